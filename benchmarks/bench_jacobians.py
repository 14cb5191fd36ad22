"""Benchmark: the dense-family (CONV) input-Jacobian contraction D(x)ᵀ C, recomputed
(`ntkadv.kernels.jacobians.ImplicitJacobian`) vs the former stored cache.

What every consumer of a CONV kernel's Jacobian cache does is one contraction
D(x)ᵀ C (supp. Eq. 9) with its own coefficients C (n, K): K eigenvectors (features),
c_t of every time and label set (attacks). Timed at CIFAR shapes (32x32x3), one
thread, as the jobs run (`_bench.pin_one_core`), CPU seconds:

* new: `ImplicitJacobian.contract(C)`: gradient tiles recomputed and contracted
  at once (nothing of m·n·d size is formed);
* before (the bound, measured in the same run): the former route, i.e. the dense
  D computed tile by tile (`iter_input_jacobian_blocks`), written as (m, n, d)
  float32 to HDF5 (chunked per evaluation point), then read back and contracted
  (the old `InputJacobian.contract` on a file), in a temporary directory;
* compute only: the dense tiles alone (the part both routes share), so
  new / compute is the contraction's overhead.

Each route is timed as the best of `--repeats` calls after one untimed call
(`_bench.best_of`; XLA compilation excluded).

The two contractions are asserted equal (float32 tiles in both). Printed as two
``BENCH`` lines: new vs before (ratio ≤ 1: one recomputation is no slower than
computing, writing and reading the stored form once) and new vs compute only (the
contraction's overhead over the tiles). The bytes of one tile vs the m·n·d float32
array are printed beside them.

Usage:

    ./uvw run python benchmarks/bench_jacobians.py          # n=1000, m=20, K=120
    ./uvw run python benchmarks/bench_jacobians.py --quick  # n=300, m=10, K=40
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _bench import best_of, emit, pin_one_core

pin_one_core()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import h5py  # noqa: E402
import numpy as np  # noqa: E402

from ntkadv.kernels import jacobians  # noqa: E402
from ntkadv.kernels.analytic import kernel_fn_from_spec  # noqa: E402
from ntkadv.kernels.blocked import block_starts  # noqa: E402
from ntkadv.kernels.families import dense_tile_rows  # noqa: E402

SHAPE = (32, 32, 3)
SPEC = {"family": "conv", "depth": 1}


def stored_route(kernel_fn, x, x_train, c, block, path):
    """The former cache: compute D, write (m, n, d) float32, read and contract."""
    m, n, d = x.shape[0], x_train.shape[0], int(np.prod(SHAPE))
    with h5py.File(path, "w") as f:
        dset = f.create_dataset("jacobian", (m, n, d), np.float32, chunks=(1, n, d))
        for i0, i1, arrays in jacobians.iter_input_jacobian_blocks(
            kernel_fn, "dense", x, x_train, block
        ):
            dset[i0:i1] = arrays["jacobian"].astype(np.float32)
    out = np.empty((m, d, c.shape[1]))
    step = max(1, 2**26 // (4 * n * d))
    with h5py.File(path) as f:
        for i0, i1 in block_starts(m, step):
            block_rows = f["jacobian"][i0:i1]
            out[i0:i1] = np.swapaxes(block_rows, 1, 2).astype(np.float64) @ c
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-train", type=int, default=1000)
    ap.add_argument("--n-test", type=int, default=20)
    ap.add_argument("--k", type=int, default=120, help="coefficient columns K")
    ap.add_argument("--block", type=int, default=100, help="kernels.block_size")
    ap.add_argument("--repeats", type=int, default=2, help="timed calls (best of)")
    ap.add_argument("--quick", action="store_true", help="n=300, m=10, K=40")
    args = ap.parse_args()
    if args.quick:
        args.n_train, args.n_test, args.k = 300, 10, 40
    rng = np.random.default_rng(0)
    n, m, k, b = args.n_train, args.n_test, args.k, args.block
    d = int(np.prod(SHAPE))
    x_train = rng.uniform(size=(n, *SHAPE))
    x = rng.uniform(size=(m, *SHAPE))
    c = rng.standard_normal((n, k))
    kernel_fn = kernel_fn_from_spec(SPEC)
    implicit = jacobians.ImplicitJacobian(
        kernel_fn, x.reshape(m, d), x_train.reshape(n, d), SHAPE, b
    )
    new = implicit.contract(c)  # also compiles the tile shape shared by all routes
    t_compute = best_of(
        lambda: list(
            jacobians.iter_input_jacobian_blocks(kernel_fn, "dense", x, x_train, b)
        ),
        args.repeats,
    )
    t_new = best_of(lambda: implicit.contract(c), args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "jacobian.h5"
        old = stored_route(kernel_fn, x, x_train, c, b, path)
        t_old = best_of(
            lambda: stored_route(kernel_fn, x, x_train, c, b, path), args.repeats
        )
    np.testing.assert_allclose(new, old, rtol=1e-10, atol=1e-12 * np.abs(old).max())
    rows = dense_tile_rows(b, n, d)
    print(
        f"CONV1 n_train={n}, m={m}, K={k}, d={d}, block={b}, one thread; "
        f"{m * n} pairs: dense compute {t_compute:.2f} s "
        f"({t_compute / (m * n) * 1e6:.1f} µs per pair), new / compute "
        f"{t_new / t_compute:.2f}; one tile {rows * b * d * 8 / 2**20:.1f} MB "
        f"(float64) vs stored D {m * n * d * 4 / 2**20:.0f} MB (float32)"
    )
    emit(
        "jacobians",
        f"CONV1 implicit contraction K={k}",
        t_new,
        t_old,
        "stored route: dense compute + float32 write + read + contract",
    )
    emit(
        "jacobians",
        f"CONV1 implicit contraction K={k} vs its tiles",
        t_new,
        t_compute,
        "the dense gradient tiles alone (shared by both routes)",
    )


if __name__ == "__main__":
    main()
