"""Shared protocol of the benchmarks (see run_all.py).

Every benchmark prints, besides its own report, one machine-readable line per
headline measurement::

    BENCH <stage> <what> <seconds> <bound seconds> <what the bound is>

(tab-separated): the time of the project's implementation and a lower bound measured
in the same run (a flop count divided by this machine's measured matmul rate, one
memory pass, the best alternative implementation, ...). run_all.py collects them into
one table of ratios (time / bound; 1.0 = at the bound).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any


def pin_one_core() -> None:
    """The compute jobs' settings (scripts/_common.pin_threads(1)); call before jax."""
    os.environ.setdefault("PJRT_NPROC", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_use_thunk_runtime" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_use_thunk_runtime=false".strip()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def best_of(fn: Callable[[], object], repeats: int = 3) -> float:
    """Fastest CPU time (one core: CPU time = busy time under load) of `repeats` calls
    after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def timed(fn: Callable[..., object], *args: object, **kw: object) -> tuple[float, Any]:
    """(CPU seconds, result) of one call of ``fn(*args, **kw)``, jax results waited
    for (no warm-up: for calls that are compiled already or meant to include it)."""
    import jax

    start = time.process_time()
    out = jax.block_until_ready(fn(*args, **kw))
    return time.process_time() - start, out


def emit(stage: str, what: str, seconds: float, bound: float, kind: str) -> None:
    """Print the BENCH line of one measurement (and a readable ratio)."""
    print(f"BENCH\t{stage}\t{what}\t{seconds:.6g}\t{bound:.6g}\t{kind}", flush=True)
    print(
        f"  -> {what}: {seconds:.4g} s vs bound {bound:.4g} s = {seconds / bound:.2f}x"
    )


def kernel_entry_flops(family: str, depth: int, shape: tuple[int, ...]) -> int:
    """Flops of one analytic NTK entry Θ(x, x'): the input inner product (2 d) and,
    for CONV, per layer H·W·(2 f² + 20) (two f x f window sums, f = 3, and the
    arc-cosine maps; FC layers are O(1) per entry)."""
    d = 1
    for size in shape:
        d *= size
    if family != "conv":
        return 2 * d
    h, w = shape[:2]
    return 2 * d + depth * h * w * (2 * 3**2 + 20)


def matmul_rate(
    n: int = 1024,
    dtype: str = "float64",
    repeats: int = 3,
    k: int | None = None,
    m: int | None = None,
) -> float:
    """This machine's one-core jax matmul rate (FLOP/s) of an (n, k) @ (k, m)
    product in the fast (row-major, no transpose) layout; n x n by default."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    k, m = k or n, m or n
    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.uniform(size=(n, k)), dtype=dtype)
    b = jnp.asarray(rng.uniform(size=(k, m)), dtype=dtype)
    f = jax.jit(lambda x, y: x @ y)
    t = best_of(lambda: f(a, b).block_until_ready(), repeats)
    return 2 * n * k * m / t
