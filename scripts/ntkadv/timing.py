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


class Progress:
    """Rate-limited progress lines of a long loop: done / total, rate and ETA.

    A job longer than a minute says how far it is at most every `interval` seconds
    (and once at the end), so a researcher can watch `results/logs/<rule>/...log`
    (``tail -f``) instead of a silent job: ``Gram blocks: 12/55 (21.8 %), 0.41
    blocks/s, ETA 1.7 min``. The first call after `interval` seconds logs, later ones
    only after another `interval`; the cost of a call that does not log is one clock
    read.

    Args:
        log: the job's logger; None makes every call a no-op.
        what: what is counted ("Gram blocks", "attack tiles", ...).
        total: the number of steps of the loop.
        interval: seconds between two progress lines.
        clock: the time source (a parameter for tests).
    """

    def __init__(
        self,
        log: logging.Logger | None,
        what: str,
        total: int,
        interval: float = 30.0,
        clock=time.monotonic,
    ):
        self.log, self.what, self.total = log, what, max(int(total), 0)
        self.interval, self.clock = float(interval), clock
        self.done = 0
        self.start = self.last = clock()

    def __call__(self, steps: int = 1) -> None:
        """Count `steps` more steps; log a line when due or when the loop is done."""
        self.done += steps
        if self.log is None:
            return
        now = self.clock()
        finished = self.done >= self.total
        if not finished and now - self.last < self.interval:
            return
        self.last = now
        self.log.info("%s", self.line(now))

    def line(self, now: float) -> str:
        """The progress line at time `now`."""
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        pct = 100.0 * self.done / self.total if self.total else 100.0
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        eta = "done" if self.done >= self.total else f"ETA {_duration(left)}"
        return (
            f"{self.what}: {self.done}/{self.total} ({pct:.1f} %), "
            f"{rate:.3g}/s, elapsed {_duration(elapsed)}, {eta}"
        )


def _duration(seconds: float) -> str:
    """A duration for a progress line: 42 s, 3.5 min, 2.1 h."""
    if seconds == float("inf"):
        return "unknown"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
