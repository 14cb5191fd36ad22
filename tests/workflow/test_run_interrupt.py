"""Ctrl-C of a whole local run (issue: a training job survived its Snakemake, parent
PID 1, writing checkpoint temp files): every job stops, nothing temporary is left in
results/, the lock is released and a rerun schedules the interrupted job again.
Library side: tests/unit/test_interrupts.py (file names are unique across the tree)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import numpy as np
from test_workflow import REPO, snakemake, snakemake_command, write_config

from ntkadv import h5io

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


def test_sigkilled_training_resumes_from_its_checkpoint_bit_identically(tmp_path):
    """SIGKILL of a training job and its Snakemake (no handler runs) after an
    epoch's checkpoint: no run file, no process left; the rerun resumes from the
    checkpoint and writes the same arrays as an uninterrupted run."""
    overrides = {"dynamics.datasets.mnist.epochs": 6}
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    killed.mkdir()
    whole.mkdir()
    cfg = write_config(killed, SMOKE, **overrides)
    snakemake(killed, cfg, "results/data/mnist.h5")
    proc = subprocess.Popen(
        [*snakemake_command(killed, cfg), RUN],
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    log = killed / LOG
    deadline = time.monotonic() + 300
    while not (log.exists() and "epoch 2/6" in log.read_text()):
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "training never reached epoch 2"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the job and its Snakemake, no cleanup
    proc.communicate(timeout=60)
    time.sleep(1)
    assert not processes_mentioning(str(killed)), processes_mentioning(str(killed))
    assert not (killed / RUN).exists()
    snakemake(killed, cfg, "--unlock")  # a hard-killed Snakemake leaves its lock
    snakemake(killed, cfg, RUN, "--rerun-incomplete")
    assert "resuming from the checkpoint after epoch" in log.read_text()
    assert not list((killed / "results").rglob("*.tmp")), "temporary files left"
    snakemake(whole, write_config(whole, SMOKE, **overrides), RUN)
    a, b = h5io.read(killed / RUN), h5io.read(whole / RUN)
    assert sorted(a) == sorted(b)
    for key in a:
        if key != "seconds":  # wall-clock per epoch
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
