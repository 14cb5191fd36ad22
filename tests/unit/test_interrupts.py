"""ntkadv.interrupts: a stop signal ends a job at once, without orphan or temp file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ntkadv import interrupts

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"

JOB = textwrap.dedent(
    """
    import logging, sys, time
    from ntkadv import h5io, interrupts
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    log = logging.getLogger("job")
    interrupts.install(log, grace={grace})
    with h5io.atomic_h5(sys.argv[1]) as f:
        f.create_dataset("x", data=[1.0, 2.0])
        print("writing", flush=True)
        while True:
            {body}
    """
)
PLAIN = "time.sleep(0.05)"
#: the stop's exception swallowed, as in a gc callback ("Exception ignored in ...")
SWALLOW = (
    'try: print("ready", flush=True); time.sleep(3600)\n'
    "        except BaseException: pass"
)


#: the stop's SystemExit converted by library code, as numpy converts an exception
#: raised in __float__ of an element into a ValueError
CONVERT = (
    'try: print("ready", flush=True); time.sleep(3600)\n'
    '        except SystemExit as e: raise ValueError("converted") from e'
)


def start_job(
    tmp_path: Path, body: str, grace: float, wrapped: bool = False
) -> subprocess.Popen:
    script = tmp_path / "job.py"
    text = JOB.format(grace=grace, body=body)
    if wrapped:  # the task inside _common.call's guard
        text = text.replace("with h5io", "with interrupts.stop_wins(), h5io")
    script.write_text(text)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "out.h5")],
        cwd=SCRIPTS,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout.readline().strip() == "writing"
    return proc


def temporaries(tmp_path: Path) -> list[Path]:
    return sorted(tmp_path.glob(".out.h5.*.tmp"))


def test_registry_removes_what_is_registered(tmp_path):
    a, b = tmp_path / "a.tmp", tmp_path / "b.tmp"
    a.touch()
    with interrupts.temporary(a), interrupts.temporary(b):
        assert {str(a.resolve()), str(b.resolve())} <= interrupts.TEMP_FILES
        assert interrupts.remove_temporaries() == [str(a.resolve())]  # b never existed
    assert not a.exists() and not interrupts.TEMP_FILES


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_write_and_removes_its_temporary(tmp_path, sig):
    proc = start_job(tmp_path, PLAIN, grace=30.0)
    assert len(temporaries(tmp_path)) == 1
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 128 + sig
    assert f"stopped by {signal.Signals(sig).name}" in out
    assert "Traceback" not in out
    assert not temporaries(tmp_path) and not (tmp_path / "out.h5").exists()


def test_a_converted_stop_still_ends_the_job_as_the_stop(tmp_path):
    """A SIGINT whose SystemExit library code turns into a ValueError: the job
    exits 130 with the stop's log line and no traceback, nothing left behind."""
    proc = start_job(tmp_path, CONVERT, grace=30.0, wrapped=True)
    assert proc.stdout.readline().strip() == "ready"  # inside the converting try
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 128 + signal.SIGINT
    assert "stopped by SIGINT" in out and "Traceback" not in out, out
    assert not temporaries(tmp_path) and not (tmp_path / "out.h5").exists()


def test_without_a_stop_errors_pass_unchanged():
    assert interrupts.stop_code() is None
    with pytest.raises(ValueError, match="real"), interrupts.stop_wins():
        raise ValueError("real")


def test_a_swallowed_stop_still_exits_after_the_grace_period(tmp_path):
    proc = start_job(tmp_path, SWALLOW, grace=1.0)
    assert proc.stdout.readline().strip() == "ready"  # inside the swallowing try
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 128 + signal.SIGINT
    assert time.monotonic() - t0 < 15
    assert "still running after the stop signal" in out
    assert not temporaries(tmp_path) and not (tmp_path / "out.h5").exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux")
def test_a_job_dies_with_its_parent(tmp_path):
    """The parent (Snakemake's place) is SIGKILLed: the job gets SIGTERM and stops."""
    job = tmp_path / "job.py"
    job.write_text(JOB.format(grace=30.0, body=PLAIN))
    pid_file = tmp_path / "pid"
    parent = textwrap.dedent(
        f"""
        import subprocess, sys, time
        out = {str(tmp_path / "out.h5")!r}
        p = subprocess.Popen([sys.executable, {str(job)!r}, out],
                             stdout=subprocess.PIPE, text=True)
        p.stdout.readline()
        open({str(pid_file)!r}, "w").write(str(p.pid))
        time.sleep(600)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", parent], cwd=SCRIPTS)
    for _ in range(400):
        if pid_file.exists() and pid_file.read_text():
            break
        time.sleep(0.05)
    child = int(pid_file.read_text())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    for _ in range(200):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the job outlived its parent")
    assert not temporaries(tmp_path)
