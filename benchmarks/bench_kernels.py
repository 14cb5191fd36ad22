"""Kernel-stage benchmarks: Gram blocks, input-Jacobian caches, eigendecomposition.

Each measurement is compared with a lower bound measured in the same run
(benchmarks/_bench.py protocol, one pinned core, float64):

* FC2 Gram (n x n, CIFAR shapes): `ntk_gram_blocked` vs the float64 matmul X Xᵀ of
  the same inputs (the first-layer inner products every entry needs);
* input-Jacobian caches: the FC2 factored cache (two JVPs per pair and a 2 x 2 solve)
  and a CONV1 dense tile (vmap of jax.grad), each vs one evaluation of the kernel on
  the same pairs (any derivative costs at least the function); the factored and
  dense forms are checked to give the same contraction D(x)ᵀ c;
* eigendecomposition (`ntkadv.spectra.eigh`, LAPACK syevd with vectors) vs ~4 n³
  flops at this machine's measured matmul rate.
CONV Gram blocks are benchmarked in bench_conv_ntk.py.

Run: ``./uvw run python benchmarks/bench_kernels.py [--quick]``.
"""

from __future__ import annotations

import argparse

from _bench import best_of, emit, matmul_rate, pin_one_core

pin_one_core()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

jax.config.update("jax_enable_x64", True)

from ntkadv import compat  # noqa: E402

compat.skip_tensorflow_interop()

from ntkadv.kernels import analytic, blocked, jacobians  # noqa: E402
from ntkadv.spectra import eigh  # noqa: E402

SHAPE = (32, 32, 3)


def bench_gram(n: int, block: int, repeats: int) -> None:
    x = np.random.default_rng(0).uniform(size=(n, *SHAPE))
    flat = jnp.asarray(x.reshape(n, -1))
    mm = jax.jit(lambda a: a @ a.T)
    t_mm = best_of(lambda: mm(flat).block_until_ready(), repeats)
    kernel_fn = analytic.kernel_fn_from_spec({"family": "fc", "depth": 2})
    t = best_of(lambda: blocked.ntk_gram_blocked(kernel_fn, x, None, block), repeats)
    emit("kernels", f"FC2 Gram {n}x{n} (CIFAR)", t, t_mm, "X Xᵀ float64 matmul")


def bench_jacobians(n: int, m: int, block: int, repeats: int) -> None:
    rng = np.random.default_rng(1)
    x_train = rng.uniform(size=(n, *SHAPE))
    x_eval = rng.uniform(size=(m, *SHAPE))
    c = rng.standard_normal((n, 3))
    fc = analytic.kernel_fn_from_spec({"family": "fc", "depth": 2})
    one = jax.jit(fc)
    t_k = best_of(lambda: one(x_eval, x_train).block_until_ready(), repeats)
    built = {}
    for form in ("factored", "dense"):
        build = jacobians.input_jacobian_fn(fc, form)
        built[form] = build(x_eval, x_train, block)
        if form == "factored":
            t = best_of(lambda b=build: b(x_eval, x_train, block), repeats)
            emit("kernels", f"FC2 factored Jacobian {m}x{n}", t, t_k, "one kernel pass")
    a, b = (built[f].contract(c) for f in ("factored", "dense"))
    err = np.abs(a - b).max() / np.abs(b).max()
    print(f"factored vs dense contraction: max rel {err:.1e}")
    conv = analytic.kernel_fn_from_spec({"family": "conv", "depth": 1})
    r, cols = 10, min(n, 100)
    xe, xt = jnp.asarray(x_eval[:r]), jnp.asarray(x_train[:cols])
    k_conv = jax.jit(conv)
    t_kc = best_of(lambda: k_conv(xe, xt).block_until_ready(), repeats)
    tile = jax.jit(jacobians.dense_tile_fn(conv))
    t = best_of(lambda: tile(xe, xt).block_until_ready(), repeats)
    emit("kernels", f"CONV1 dense Jacobian tile {r}x{cols}", t, t_kc, "one kernel pass")


def bench_eigh(n: int, repeats: int) -> None:
    x = np.random.default_rng(2).uniform(size=(n, 300))
    k = x @ x.T + np.eye(n)
    t = best_of(lambda: eigh.eigendecompose(k), repeats)
    bound = 4 * n**3 / matmul_rate()
    emit("spectra", f"eigh {n}x{n}", t, bound, "4 n³ flops at the matmul rate")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--block-size", type=int, default=100)
    args = parser.parse_args()
    n, m, reps = (300, 20, 2) if args.quick else (1000, 100, 3)
    print(f"jax {jax.__version__} on {jax.devices()[0].device_kind}, x64, one core")
    bench_gram(n, args.block_size, reps)
    bench_jacobians(n, m, args.block_size, reps)
    bench_eigh(n if not args.quick else 1000, reps)


if __name__ == "__main__":
    main()
