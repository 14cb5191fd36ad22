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


CONV_FILTER = 3


def conv_entry_madds(depth: int, shape: tuple[int, ...]) -> int:
    """Multiply-adds of one CONV-depth NTK entry Θ(x, x') in the diagonal-spatial
    form (ntkadv.kernels.conv): H·W·(C + 2 + depth·(2 f² + 30)), i.e. the channel
    products and the final means, and per layer the two f x f window sums (K and Θ)
    plus ~30 for the affine maps, √, the arc-cosine angle (range reduction, one
    division and a 10-term polynomial, each counted 1) and the updates. Elementwise
    work: its bound is `vector_madd_seconds`, not the matmul rate."""
    h, w, c = shape
    return h * w * (c + 2 + depth * (2 * CONV_FILTER**2 + 30))


def conv_entry_vjp_madds(depth: int, shape: tuple[int, ...]) -> int:
    """Multiply-adds of the backward half of ∇ₓ Σ_j c_j Θ(x, x_j) per entry (one
    (x, x_j) pair), given the forward maps (`conv_entry_madds`):
    H·W·(C + 1 + depth·(2 f² + 16)), i.e. per layer the two transposed f x f window
    sums (the SAME all-ones window sum is self-adjoint) plus ~16 for the arc-cosine
    map's backward (the √ and angle tangents, one division each, the products with
    the saved values) and the affine maps, and the channel products' transpose (C)
    and the output means' (1). A lower bound on a row gradient is one forward plus
    this (a recomputed forward, as in the memory-bounded remat, counts against the
    implementation)."""
    h, w, c = shape
    return h * w * (c + 1 + depth * (2 * CONV_FILTER**2 + 16))


def vector_madd_seconds(repeats: int = 5, dtype: str = "float64") -> float:
    """Seconds per multiply-add of a vectorised, cache-resident XLA elementwise loop
    (a chain of 64 ``a * 0.999 + 0.001`` over 2^15 elements): this machine's rate
    for the elementwise maps of a kernel (the arc-cosine maps, window sums), which
    cannot run at the matmul rate."""
    import jax
    import jax.numpy as jnp

    chain = 64
    x = jnp.linspace(0.0, 1.0, 1 << 15, dtype=dtype)

    def madds(a):
        for _ in range(chain):
            a = a * 0.999 + 0.001
        return a

    f = jax.jit(madds)
    return best_of(lambda: f(x).block_until_ready(), repeats) / (chain * x.size)


def kernel_entry_seconds(
    family: str, depth: int, shape: tuple[int, ...], rate: float, madd_s: float
) -> float:
    """Lower bound on the time of one analytic NTK entry: the input inner product
    (2 d flops) at the matmul `rate` for FC (its layers are O(1) per entry), the
    `conv_entry_madds` at `madd_s` seconds each for CONV."""
    if family == "conv":
        return conv_entry_madds(depth, shape) * madd_s
    return kernel_entry_flops(family, depth, shape) / rate


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
