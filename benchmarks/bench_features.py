"""Benchmark: label-free feature scoring (rule score_features) against its bounds.

What rule `score_features` computes for K eigenfeatures at m test points (binary
CIFAR shapes, 32x32x3, n training points): the Jacobian contraction D(x)ᵀ V_K, the
clean projections, one exact perturbed kernel row Θ(x_adv, X) per (feature, point)
pair (the side that moves p_i toward zero, `ntkadv.features.rescore`), and the
rescoring of the true labels and P label permutations.

Printed per family (FC1, CONV1; one thread, as the jobs run):

* cache build: the input-Jacobian cache (built once per kernel, shared with the
  attack stage), beside the scoring time;
* new: end-to-end label-free scoring (`label_free_projections` with a jitted-once
  `PairProjector`, then `rescore` of 1 + P label sets), per feature;
* before: the previous direct computation (loss gradients, FGSM points, kernel rows
  recomputed there with `ntk_gram_blocked`, true labels only), per feature, with
  the same kernel; `--stax` also times it with neural-tangents' CONV kernel (the
  kernel before the direct CONV NTK);
* rows: the K·m perturbed kernel rows alone in one blocked call (the kernel's own
  cost; new / rows is the scoring overhead);
* roofline: a float64 GEMM with the kernel rows' inner products (K·m·n·d
  multiply-adds, the contraction every kernel entry contains), measured in the same
  run; new / roofline is printed.

Each family's end-to-end scoring is also printed as a ``BENCH`` line
(benchmarks/_bench.py protocol) against its bound at this machine's rates measured
in the run: the gradient contraction D(x)ᵀ V_K (2 K·m·n·d flops at the float64
matmul rate) plus the K·m perturbed rows of n kernel entries
(`_bench.kernel_entry_seconds`): for FC the entry's inner product (2 d flops at the
matmul rate, so two K·m·n·d contractions in all); for CONV the entry's elementwise
multiply-adds (window sums and arc-cosine maps, `_bench.conv_entry_madds`) at the
vectorised elementwise rate, which elementwise maps cannot exceed (the ratio to the
all-flops-at-the-matmul-rate count is printed beside it). Times are CPU seconds (one
thread, as the jobs: `_bench.pin_one_core`).

The true-label correctness of the new and the old route is asserted equal (robust =
clean AND attacked, the convention of both). Usage:

    ./uvw run python benchmarks/bench_features.py          # K=100, n=1000
    ./uvw run python benchmarks/bench_features.py --quick  # K=20, P=4
"""

from __future__ import annotations

import argparse

from _bench import (
    emit,
    kernel_entry_flops,
    kernel_entry_seconds,
    matmul_rate,
    pin_one_core,
    timed,
    vector_madd_seconds,
)

pin_one_core()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import numpy as np  # noqa: E402

from ntkadv import losses  # noqa: E402
from ntkadv.claims.nulls import label_permutations  # noqa: E402
from ntkadv.features import algebra, rescore, scoring  # noqa: E402
from ntkadv.features.projections import PairProjector  # noqa: E402
from ntkadv.kernels import jacobians  # noqa: E402
from ntkadv.kernels.analytic import kernel_fn_from_spec  # noqa: E402
from ntkadv.kernels.blocked import ntk_gram_blocked  # noqa: E402

SPECS = {"fc": {"family": "fc", "depth": 1}, "conv": {"family": "conv", "depth": 1}}
SHAPE = (32, 32, 3)


def direct_scores(kernel_fn, jac, k_x, x, x_train, eigvals, eigvecs, idx, y_tr, y, eps):
    """The previous `score_features`: FGSM points from the loss gradients, exact
    rows recomputed there (true labels only). Returns (clean, robust) (K, m)."""
    v = eigvecs[:, idx]
    w = algebra.feature_weights(eigvals, eigvecs, y_tr, idx)
    f = algebra.feature_outputs(k_x, v, w)
    grad = algebra.feature_loss_gradients(f, jac.contract(v), w, y, "binary")
    x_adv = algebra.fgsm_points(x[None], grad, eps).reshape(-1, x.shape[1])
    rows = ntk_gram_blocked(
        kernel_fn, x_adv.reshape(-1, *SHAPE), x_train, 100, symmetric=False
    ).reshape(idx.size, x.shape[0], -1)
    f_adv = np.einsum("imn,ni,ir->imr", rows, v, w)
    clean = losses.predictions_correct(f, y, "binary")
    return clean, clean & losses.predictions_correct(f_adv, y, "binary")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-train", type=int, default=1000)
    ap.add_argument("--n-test", type=int, default=100, help="test points (FC)")
    ap.add_argument("--n-test-conv", type=int, default=20, help="test points (CONV)")
    ap.add_argument("--k", type=int, default=100, help="number of features K")
    ap.add_argument("--perms", type=int, default=32, help="label permutations P")
    ap.add_argument("--families", default="fc,conv")
    ap.add_argument("--stax", action="store_true", help="also time the NT kernel")
    ap.add_argument("--quick", action="store_true", help="K=20, P=4, 10 CONV points")
    args = ap.parse_args()
    if args.quick:
        args.k, args.perms, args.n_test_conv = 20, 4, 10
    rng = np.random.default_rng(0)
    eps = 8 / 255
    n = args.n_train
    x_train = rng.uniform(size=(n, *SHAPE))
    y_train = rng.choice([-1.0, 1.0], size=(n, 1))
    gram = ntk_gram_blocked(kernel_fn_from_spec(SPECS["fc"]), x_train, None, 500)
    eigvals, eigvecs = np.linalg.eigh(gram)
    eigvals, eigvecs = eigvals[::-1].copy(), eigvecs[:, ::-1].copy()
    idx = np.arange(args.k)
    perms = label_permutations(n, args.perms, 0)
    ys = np.concatenate([y_train[None], rescore.permuted_targets(y_train, perms)])
    d = int(np.prod(SHAPE))
    rate, madd_s = matmul_rate(), vector_madd_seconds()
    print(
        f"n_train={n}, K={args.k}, d={d}, P={args.perms}, one thread, float64 "
        f"matmul {rate / 1e9:.1f} GFLOP/s, {madd_s * 1e9:.3f} ns per vectorised madd"
    )
    for family in args.families.split(","):
        m = args.n_test if family == "fc" else args.n_test_conv
        x = rng.uniform(size=(m, *SHAPE))
        xf = x.reshape(m, d)
        y = rng.choice([-1.0, 1.0], size=(m, 1))
        kernel_fn = kernel_fn_from_spec(SPECS[family])
        build = jacobians.input_jacobian_fn(kernel_fn, family)
        t_build, jac = timed(build, x, x_train, 100)
        k_x = ntk_gram_blocked(kernel_fn, x, x_train, 100, symmetric=False)
        project = PairProjector(kernel_fn, x_train, 100, 100)
        project(xf[:1], np.ones((1, d)), np.ones(1), eigvecs[:, :1], eps)  # compile

        def new_route(jac=jac, k_x=k_x, project=project, xf=xf, y=y):
            lf = scoring.label_free_projections(
                eigvals=eigvals,
                eigvecs=eigvecs,
                indices=idx,
                k_eval_train=k_x,
                grad_p=jac.contract(eigvecs[:, idx]),
                x_eval=xf,
                project=project,
                eps=eps,
            )
            return rescore.rescore(lf, ys, y, "binary")

        t_new, res = timed(new_route)
        t_old, (clean, robust) = timed(
            direct_scores,
            kernel_fn,
            jac,
            k_x,
            xf,
            x_train,
            eigvals,
            eigvecs,
            idx,
            y_train,
            y,
            eps,
        )
        np.testing.assert_array_equal(res.correct_clean[0], clean)
        np.testing.assert_array_equal(res.correct_robust[0], robust)
        # the kernel's own cost: K·m rows in one blocked call (compiled beforehand)
        pts = np.clip(xf[None] + eps * rng.choice([-1.0, 1.0], (args.k, m, d)), 0, 1)
        pts = pts.reshape(-1, *SHAPE)
        ntk_gram_blocked(kernel_fn, pts[:100], x_train, 100, symmetric=False)
        t_rows, _ = timed(
            ntk_gram_blocked, kernel_fn, pts, x_train, 100, symmetric=False
        )
        # roofline: the inner products of every kernel entry as one float64 GEMM
        a = pts.reshape(-1, d)
        b = x_train.reshape(n, d).T.copy()
        a[:10] @ b
        t_gemm, _ = timed(np.matmul, a, b)
        k = args.k
        line = (
            f"[{family}] m={m}: cache build {t_build:.2f} s (once per kernel) | "
            f"new {t_new / k * 1e3:.1f} ms/feature ({t_new:.2f} s, 1 + {args.perms} "
            f"label sets) | before {t_old / k * 1e3:.1f} ms/feature (true labels "
            f"only) | rows alone {t_rows / k * 1e3:.1f} ms/feature | roofline (GEMM "
            f"of the inner products) {t_gemm / k * 1e3:.2f} ms/feature"
        )
        print(line)
        print(
            f"[{family}] ratios: before / new = {t_old / t_new:.2f}x; new / rows "
            f"alone = {t_new / t_rows:.2f}x; new / roofline = {t_new / t_gemm:.1f}x "
            f"(new + cache build) / roofline = {(t_new + t_build) / t_gemm:.1f}x"
        )
        depth = SPECS[family]["depth"]
        # D(x)ᵀ V_K at the matmul rate, then K·m perturbed rows of n entries
        bound = (
            m
            * n
            * (2 * d / rate + kernel_entry_seconds(family, depth, SHAPE, rate, madd_s))
        )
        all_flops = m * n * (2 * d + kernel_entry_flops(family, depth, SHAPE)) / rate
        print(
            f"[{family}] new / bound = {t_new / k / bound:.2f}x; with every flop at "
            f"the matmul rate (elementwise maps too) {t_new / k / all_flops:.2f}x"
        )
        emit(
            "features",
            f"{family.upper()}{depth} scoring per feature (m={m}, n={n}, 1 + "
            f"{args.perms} label sets)",
            t_new / k,
            bound,
            "gradient contraction at the matmul rate + perturbed rows "
            + ("(madds at the vectorised rate)" if family == "conv" else "(flops)"),
        )
        if args.stax and family == "conv":
            nt_fn = kernel_fn_from_spec(SPECS[family], implementation="stax")
            ntk_gram_blocked(nt_fn, x[:2], x_train[:100], 100, symmetric=False)
            t_nt, _ = timed(
                direct_scores,
                nt_fn,
                jac,
                k_x,
                xf,
                x_train,
                eigvals,
                eigvecs,
                idx,
                y_train,
                y,
                eps,
            )
            print(
                f"[{family}] before, neural-tangents kernel: {t_nt / k * 1e3:.1f} "
                f"ms/feature; before(NT) / new = {t_nt / t_new:.2f}x"
            )


if __name__ == "__main__":
    main()
