"""Wall-time logging of the library's task functions."""

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
