"""Ctrl-C of a whole local run (issue: a training job survived its Snakemake, parent
PID 1, writing checkpoint temp files): every job stops, nothing temporary is left in
results/, the lock is released and a rerun schedules the interrupted job again.
Library side: tests/unit/test_interrupts.py (file names are unique across the tree)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from test_workflow import REPO, snakemake, snakemake_command, write_config

SMOKE = REPO / "tests/config/smoke.yaml"
RUN = "results/dynamics/mnist/standard/seed0/run.h5"
LOG = "results/logs/train_dynamics_network/mnist/standard/seed0.log"


def processes_mentioning(text: str) -> list[str]:
    out = subprocess.run(
        ["ps", "-eo", "pid,ppid,args"], capture_output=True, text=True, check=True
    ).stdout
    return [line for line in out.splitlines() if text in line and "ps -eo" not in line]


def test_sigint_to_the_run_stops_every_job_and_a_rerun_resumes(tmp_path):
    # many epochs, so that the signal lands mid-training on any machine
    cfg = write_config(tmp_path, SMOKE, **{"dynamics.datasets.mnist.epochs": 200})
    snakemake(tmp_path, cfg, "results/data/mnist.h5")
    cmd = snakemake_command(tmp_path, cfg)
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen(
        [*cmd, RUN],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's job
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    log = tmp_path / LOG
    deadline = time.monotonic() + 300
    while not (log.exists() and "epoch 1/200" in log.read_text()):
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "training never reached epoch 1"
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0
    time.sleep(1)
    assert not processes_mentioning(str(tmp_path)), processes_mentioning(str(tmp_path))
    assert not list((tmp_path / "results").rglob("*.tmp")), "temporary files left"
    assert not (tmp_path / RUN).exists()
    text = log.read_text()
    assert "stopped by SIGINT" in text and "Traceback" not in text, text[-2000:]
    rerun = snakemake(tmp_path, cfg, RUN, "-n")  # no stale lock; the job is due again
    assert "train_dynamics_network" in rerun.stdout
