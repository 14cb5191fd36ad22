"""Clean stops of a job: SIGINT / SIGTERM end it promptly, with no orphan and no
temporary file left behind.

Ctrl-C in a terminal sends SIGINT to Snakemake and to every job it started (one
process group). Python turns SIGINT into a KeyboardInterrupt *between bytecodes*;
one that lands inside a callback (jax's garbage-collection hook, an HDF5 close) is
printed as "Exception ignored" and swallowed, and the job then trains on, without a
lock, after Snakemake has exited (observed: a CIFAR-10 training job re-parented to
PID 1, still writing checkpoint temp files). Three measures close that path:

* `install` makes the job die with its parent: ``prctl(PR_SET_PDEATHSIG, SIGTERM)``
  (Linux), so a job whose Snakemake is gone receives SIGTERM even if it missed the
  first signal;
* its handler logs one line and raises SystemExit(128 + signum), which unwinds
  through ``h5io.atomic_h5`` (the temporary file is removed, the output never
  appears) and needs no traceback;
* a watchdog thread started by the first signal removes every registered temporary
  file and calls ``os._exit`` after `grace` seconds, in case the exception is
  swallowed; a second signal does the same at once.

Temporary files register themselves (`temporary`), so the watchdog knows what to
delete. Nothing here imports jax or h5py.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

#: Temporary files of the writes in progress (absolute paths).
TEMP_FILES: set[str] = set()
_LOCK = threading.Lock()
_STATE: dict[str, object] = {"signalled": None}
PR_SET_PDEATHSIG = 1


@contextlib.contextmanager
def temporary(path: str | os.PathLike) -> Iterator[None]:
    """Register `path` as a temporary file (or folder) for the duration of the block."""
    key = str(Path(path).resolve())
    with _LOCK:
        TEMP_FILES.add(key)
    try:
        yield
    finally:
        with _LOCK:
            TEMP_FILES.discard(key)


def remove_temporaries() -> list[str]:
    """Delete every registered temporary file or folder; return the paths removed."""
    with _LOCK:
        paths = sorted(TEMP_FILES)
        TEMP_FILES.clear()
    removed = []
    for p in paths:
        with contextlib.suppress(FileNotFoundError):
            if os.path.isdir(p):  # a temporary folder (ntkadv.atomic)
                shutil.rmtree(p)
            else:
                os.remove(p)
            removed.append(p)
    return removed


def die_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send `sig` to this process when its parent exits (Linux).

    Returns:
        True if set; False where prctl is unavailable (not Linux). If the parent
        already exited (re-parented to PID 1) the signal is sent at once.
    """
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        return False
    if os.getppid() == 1:  # the parent died before prctl: nobody will signal
        os.kill(os.getpid(), sig)
    return True


def _hard_exit(code: int, log: logging.Logger | None) -> None:
    removed = remove_temporaries()
    if log is not None:
        log.error("still running after the stop signal: exiting, removed %s", removed)
    node: logging.Logger | None = log
    while node is not None:  # os._exit skips the buffers: flush what logged
        for handler in node.handlers:
            with contextlib.suppress(Exception):
                handler.flush()
        node = node.parent
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def stop_code() -> int | None:
    """128 + the number of the stop signal this process received, or None."""
    name = _STATE["signalled"]
    return None if name is None else 128 + signal.Signals[str(name)].value


@contextlib.contextmanager
def stop_wins() -> Iterator[None]:
    """After a stop signal, any exception leaving the block ends the job as the stop.

    The handler's SystemExit can change its type on the way out: numpy turns an
    exception raised in ``__float__`` of an element it converts into "ValueError:
    setting an array element with a sequence" (observed: SIGINT landing in
    ``np.mean`` over a list of jax scalars in a training epoch). Such an exception
    is re-raised as SystemExit(128 + signum) without a traceback; before any
    signal, exceptions pass unchanged.
    """
    try:
        yield
    except Exception:
        code = stop_code()
        if code is None:
            raise
        raise SystemExit(code) from None


def install(log: logging.Logger | None = None, grace: float = 10.0) -> None:
    """SIGINT / SIGTERM handlers of a job (see the module docstring).

    Args:
        log: the job's logger (one line per signal).
        grace: seconds between the first signal and the forced exit.
    """

    def handler(signum: int, frame: object) -> None:
        code = 128 + signum
        name = signal.Signals(signum).name
        if _STATE["signalled"] is not None:  # second signal: no more waiting
            _hard_exit(code, log)
        _STATE["signalled"] = name
        if log is not None:
            log.error("stopped by %s: the job's outputs are not written", name)
        timer = threading.Timer(grace, _hard_exit, (code, log))
        timer.daemon = True
        timer.start()
        raise SystemExit(code)

    die_with_parent()
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
