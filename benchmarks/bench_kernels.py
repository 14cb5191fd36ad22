"""Benchmark the NTK caches against plain float64 matmuls measured in the same run.

1. Gram throughput of an FC and a CONV analytic NTK (`ntk_gram_blocked`, float64) in
   kernel entries/s and effective GFLOP/s, vs NumPy ``X1 @ X2.T`` of the same shapes.
   Flop counts (documented, approximate): every kernel entry needs the first-layer
   inner products, 2·d flops per entry (the matmul's own count). CONV additionally
   does, per layer and per pair, an f x f spatial sum over the H·W covariance map
   and the ReLU arc-cosine map: depth·H·W·(2 f² + 20) flops per entry (the 20 stands
   for the ~10 elementwise ops, arctan2/sqrt counted as one each, on NNGP and NTK).
   FC's per-entry scalar ops (O(depth)) are ignored.
2. Input-Jacobian cache build time for an FC kernel: dense per-pair gradients
   (vmap of jax.grad) vs the factored form (two JVPs per pair and a 2 x 2 solve),
   checked to give the same contraction D(x)ᵀ c.

Run: ``uv run python benchmarks/bench_kernels.py [--n 400 --n-conv 200 --m 20]``.
Sizes are small by default (~1-2 min on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

from ntkadv.kernels import analytic, blocked, jacobians  # noqa: E402

SHAPES = {"mnist": (28, 28, 1), "cifar": (32, 32, 3)}


def best_of(fn, repeats: int) -> float:
    """Fastest wall time of `repeats` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_gram(args, shape) -> None:
    d, hw = int(np.prod(shape)), shape[0] * shape[1]
    print(f"\n== Gram n x n, input {shape} (d = {d}), float64 ==")
    for name, spec, f, n in [
        ("fc2", {"family": "fc", "depth": 2}, 0, args.n),
        ("conv2", {"family": "conv", "depth": 2}, 3, args.n_conv),
    ]:
        x = np.random.default_rng(0).uniform(size=(n, *shape))
        flat = x.reshape(n, d)
        t_mm = best_of(lambda flat=flat: flat @ flat.T, args.repeats)
        gflops_mm = 2 * n * n * d / t_mm / 1e9
        print(f"n = {n}: numpy X @ X.T {t_mm * 1e3:8.2f} ms, {gflops_mm:6.2f} GFLOP/s")
        kernel_fn = analytic.kernel_fn_from_spec(spec)
        flops_entry = 2 * d + (spec["depth"] * hw * (2 * f * f + 20) if f else 0)
        # symmetric: only the upper block triangle is computed; count what is done
        nb = -(-n // args.block_size)
        done = n * n * (nb + 1) / (2 * nb)
        start = time.perf_counter()
        blocked.ntk_gram_blocked(kernel_fn, x, None, args.block_size)
        first = time.perf_counter() - start
        start = time.perf_counter()
        blocked.ntk_gram_blocked(kernel_fn, x, None, args.block_size)
        t = time.perf_counter() - start
        print(
            f"  {name:6s} NTK {t * 1e3:10.2f} ms, {done / t:9.3e} entries/s, "
            f"{done * flops_entry / t / 1e9:6.2f} GFLOP/s effective "
            f"(1st call incl. compile {first:.2f} s)\n"
            f"  ratio NTK time / matmul time = {t / t_mm:.1f}x"
        )


def bench_jacobian(args, shape) -> None:
    rng = np.random.default_rng(1)
    x_train = rng.uniform(size=(args.n, *shape))
    x_eval = rng.uniform(size=(args.m, *shape))
    c = rng.standard_normal((args.n, 3))
    kernel_fn = analytic.kernel_fn_from_spec({"family": "fc", "depth": 2})
    print(f"\n== FC2 input-Jacobian cache, {args.m} eval x {args.n} train points ==")
    out = {}
    for form in ("factored", "dense"):
        build = jacobians.input_jacobian_fn(kernel_fn, form)
        start = time.perf_counter()
        build(x_eval, x_train, args.block_size)
        first = time.perf_counter() - start
        start = time.perf_counter()
        jac = build(x_eval, x_train, args.block_size)
        out[form] = (time.perf_counter() - start, jac.contract(c))
        print(f"{form:8s}: {out[form][0]:8.3f} s (1st incl. compile {first:.3f} s)")
    err = np.abs(out["dense"][1] - out["factored"][1]).max()
    scale = np.abs(out["dense"][1]).max()
    print(f"max |dense - factored| / max|dense| = {err / scale:.2e} (same numbers)")
    print(f"dense / factored build time = {out['dense'][0] / out['factored'][0]:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="training points")
    parser.add_argument("--n-conv", type=int, default=200, help="CONV Gram size")
    parser.add_argument("--m", type=int, default=20, help="Jacobian eval points")
    parser.add_argument("--dataset", choices=sorted(SHAPES), default="cifar")
    parser.add_argument("--block-size", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].device_kind}, x64")
    shape = SHAPES[args.dataset]
    bench_gram(args, shape)
    bench_jacobian(args, shape)


if __name__ == "__main__":
    main()
