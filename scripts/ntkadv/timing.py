"""Wall-time logging of the library's task functions, and the process's memory."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def timed(log: logging.Logger, what: str) -> Iterator[dict[str, float]]:
    """Log the wall time of a block; yields a dict that receives `seconds`."""
    out: dict[str, float] = {}
    start = time.perf_counter()
    yield out
    out["seconds"] = time.perf_counter() - start
    log.info("%s took %.2f s", what, out["seconds"])


def proc_status_kb(field: str) -> int | None:
    """One memory field of /proc/self/status in KiB (VmRSS now, VmHWM the peak).

    VmHWM is the peak resident set of the current process image only (unlike
    ``getrusage().ru_maxrss``, which Linux carries over from the forking parent
    across exec). None where /proc is absent (not Linux) or lacks the field.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None
