"""Benchmark: loss gradients of K eigenfeatures, Jacobian-cache contraction vs autodiff.

The quantity is what rule `score_features` needs for FGSM on every feature:
∇ₓL(f⁽ⁱ⁾(x), y) for K features f⁽ⁱ⁾(x) = λ_i⁻¹ Θ(x, X) v_i v_iᵀ Y at m test points
(binary CIFAR shapes, 32x32x3, labels ±1).

* cache (ours): ONE contraction D(x)ᵀ V_K of the input-Jacobian cache
  (`ntkadv.kernels.jacobians`, built once per kernel and shared with the attack
  stage), then the rank-one loss-gradient formula
  (`ntkadv.features.algebra.feature_loss_gradients`).
* baseline (the authors' notebook): one jitted `jax.grad` of the loss of f⁽ⁱ⁾ through
  `kernel_fn` per feature (compiled once, reused with the feature's coefficients).
  For expensive kernels only `--sample` features are timed and the time is
  extrapolated linearly to K (printed as such).

The gradients of the timed features are asserted equal (float64 cache: rtol 1e-8;
float32 dense cache of the CONV kernel: 1e-4 of the largest entry). The eigenvectors
are those of the FC1 Gram matrix for every family (only V's values, not its origin,
enter the cost). Usage (paper-sized default, n_train = 2000, K = 100):

    uv run python benchmarks/bench_features.py
    uv run python benchmarks/bench_features.py --n-train 300 --n-test 20 --k 30  # quick
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from ntkadv.features import algebra as features  # noqa: E402
from ntkadv.kernels import jacobians  # noqa: E402
from ntkadv.kernels.analytic import kernel_fn_from_spec  # noqa: E402
from ntkadv.kernels.blocked import ntk_gram_blocked  # noqa: E402

SPECS = {"fc": {"family": "fc", "depth": 1}, "conv": {"family": "conv", "depth": 1}}


def _timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-train", type=int, default=2000)
    ap.add_argument("--n-test", type=int, default=100, help="test points (FC)")
    ap.add_argument("--n-test-conv", type=int, default=20, help="test points (CONV)")
    ap.add_argument("--k", type=int, default=100, help="number of features K")
    ap.add_argument("--families", default="fc,conv")
    ap.add_argument("--sample", type=int, default=3, help="CONV features timed")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    shape = (32, 32, 3)
    x_train = rng.uniform(size=(args.n_train, *shape))
    y_train = rng.choice([-1.0, 1.0], size=(args.n_train, 1))
    fc_fn = kernel_fn_from_spec(SPECS["fc"])
    gram = ntk_gram_blocked(fc_fn, x_train, None, 500)
    eigvals, eigvecs = np.linalg.eigh(gram)
    eigvals, eigvecs = eigvals[::-1].copy(), eigvecs[:, ::-1].copy()
    idx = np.arange(args.k)
    w = features.feature_weights(eigvals, eigvecs, y_train, idx)
    coefs = features.feature_coefficients(eigvals, eigvecs, y_train, idx)[:, :, 0]
    print(f"n_train={args.n_train}, K={args.k}, d={np.prod(shape)}")
    for family in args.families.split(","):
        m = args.n_test if family == "fc" else args.n_test_conv
        x = rng.uniform(size=(m, *shape))
        y = rng.choice([-1.0, 1.0], size=(m, 1))
        kernel_fn = kernel_fn_from_spec(SPECS[family])
        build = jacobians.input_jacobian_fn(kernel_fn, family)
        jac, t_build = _timed(build, x, x_train, 100)
        k_x = np.asarray(jax.jit(kernel_fn)(x, x_train))

        def cache_route(jac=jac, k_x=k_x, y=y):
            grad_p = jac.contract(eigvecs[:, idx])  # ONE contraction, (m, d, K)
            f = features.feature_outputs(k_x, eigvecs[:, idx], w)
            return features.feature_loss_gradients(f, grad_p, w, y, "binary")

        ours, t_cache = _timed(cache_route)

        @jax.jit
        def grad_one(x, c, x_train, kernel_fn=kernel_fn, y=y):
            def loss(x):
                f = kernel_fn(x, x_train) @ c
                return jnp.sum(jax.nn.softplus(f) - 0.5 * (y[:, 0] + 1) * f)

            return jax.grad(loss)(x)

        n_timed = args.k if family == "fc" else min(args.sample, args.k)
        grad_one(x, coefs[:, 0], x_train).block_until_ready()  # compile once, not timed
        start = time.perf_counter()
        ref = [
            np.asarray(grad_one(x, coefs[:, i], x_train)).reshape(m, -1)
            for i in range(n_timed)
        ]
        t_auto = (time.perf_counter() - start) * args.k / n_timed
        ref = np.stack(ref)
        tol = 1e-8 if jac.form == "factored" else 1e-4
        err = np.abs(ours[:n_timed] - ref).max() / np.abs(ref).max()
        assert err <= tol, f"{family}: gradients differ (relative {err:.2e} > {tol})"
        extrap = (
            "" if n_timed == args.k else f" ({n_timed} timed, x{args.k / n_timed:g})"
        )
        print(
            f"[{family}] m={m}: cache build {t_build:.2f} s (once per kernel); "
            f"contraction route {t_cache:.2f} s; per-feature autodiff "
            f"{t_auto:.2f} s{extrap}; max relative difference {err:.1e}"
        )
        print(
            f"[{family}] ratio autodiff / contraction = {t_auto / t_cache:.1f}x "
            f"(including the cache build: {t_auto / (t_cache + t_build):.1f}x)"
        )


if __name__ == "__main__":
    main()
