"""Tests of ntkadv.features.topr: top-r robust kernels Θ'_r and their attacks.

`np.linalg.solve` for the full kernel machine and `np.linalg.pinv` for Θ'_r.
"""

from __future__ import annotations

import chex
import jax
import numpy as np
import pytest

from _shared import EPS, N_EVAL, N_TRAIN, feature_problem, reference_loss
from ntkadv import losses
from ntkadv.attacks.pgd import pgd
from ntkadv.claims.nulls import label_permutations
from ntkadv.features import rescore, scoring, topr
from ntkadv.features.projections import PairProjector


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_topr_kernels(task):
    p = feature_problem("fc", task)
    rng = np.random.default_rng(3)
    ranked = topr.robustness_ranking(rng.uniform(size=N_TRAIN), np.arange(N_TRAIN))
    rs = topr.topr_grid(N_TRAIN, [1, 3, 7, 100])
    np.testing.assert_array_equal(rs, [1, 3, 7, N_TRAIN])
    coefs = topr.topr_coefficients(p["eigvals"], p["eigvecs"], p["y_train"], ranked, rs)
    # r = rank(Θ): the full kernel machine
    np.testing.assert_allclose(
        coefs[-1], np.linalg.solve(p["gram"], p["y_train"]), rtol=1e-8, atol=1e-10
    )
    # r < n: the pseudo-inverse of Θ'_r, computed independently
    for j, r in enumerate(rs[:-1]):
        sel = ranked[:r]
        theta_r = topr.topr_gram(p["eigvals"], p["eigvecs"], sel)
        np.testing.assert_allclose(np.linalg.matrix_rank(theta_r), r)
        cut = 0.5 * p["eigvals"][sel].min() / p["eigvals"][0]
        pinv = np.linalg.pinv(theta_r, rtol=cut, hermitian=True)
        np.testing.assert_allclose(
            coefs[j], pinv @ p["y_train"], rtol=1e-6, atol=1e-8 * np.abs(coefs[j]).max()
        )


def test_evaluate_topr_full_rank_matches_full_kernel():
    p = feature_problem("fc", "binary")
    ranked = np.arange(N_TRAIN)[::-1]
    rs = np.array([2, N_TRAIN])
    coefs = topr.topr_coefficients(p["eigvals"], p["eigvecs"], p["y_train"], ranked, rs)
    c_full = np.linalg.solve(p["gram"], p["y_train"])

    def pgd_fn(c):
        return pgd(
            p["kernel_fn"],
            p["x_eval"].reshape(N_EVAL, -1),
            p["x_train"],
            c,
            p["y_eval"],
            "binary",
            EPS,
            0.05,
            3,
        )

    res = topr.evaluate_topr(
        coefs=coefs,
        c_full=c_full,
        k_eval_train=p["k_eval_train"],
        x_eval=p["x_eval"].reshape(N_EVAL, -1),
        y_eval=p["y_eval"],
        contract=p["contract"],
        kernel_rows_fn=p["rows"],
        pgd_fn=pgd_fn,
        eps=EPS,
        task="binary",
    )
    for key in ("clean", "fgsm_transfer", "pgd_transfer", "fgsm_own", "pgd_own"):
        chex.assert_shape(res[key], (rs.size, N_EVAL))
        assert (res[key] <= res["clean"]).all()  # robust = clean AND attacked
    np.testing.assert_array_equal(res["clean"][-1], res["full_clean"])
    np.testing.assert_array_equal(res["fgsm_own"][-1], res["full_fgsm"])
    np.testing.assert_array_equal(res["fgsm_transfer"][-1], res["full_fgsm"])
    np.testing.assert_array_equal(res["pgd_own"][-1], res["full_pgd"])
    np.testing.assert_array_equal(res["pgd_transfer"][-1], res["full_pgd"])


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_own_fgsm_matches_autodiff(task):
    """Own-FGSM robust correctness of f'_r against jax.grad of its loss."""
    p = feature_problem("fc", task)
    ranked = np.arange(N_TRAIN)
    rs = np.array([1, 3, 8])
    coefs = topr.topr_coefficients(p["eigvals"], p["eigvecs"], p["y_train"], ranked, rs)
    clean, robust = topr.own_fgsm_correctness(
        coefs=coefs,
        k_eval_train=p["k_eval_train"],
        x_eval=p["x_eval"].reshape(N_EVAL, -1),
        y_eval=p["y_eval"],
        contract=p["contract"],
        kernel_rows_fn=p["rows"],
        eps=EPS,
        task=task,
    )
    for j in range(rs.size):
        c = coefs[j]

        def total(x, c=c):
            return reference_loss(
                p["kernel_fn"](x, p["x_train"]) @ c, p["y_eval"], task
            )

        g = np.asarray(jax.grad(total)(p["x_eval"]))
        x_adv = np.clip(p["x_eval"] + EPS * np.sign(g), 0, 1)
        ok0 = losses.predictions_correct(p["k_eval_train"] @ c, p["y_eval"], task)
        f_adv = np.asarray(p["kernel_fn"](x_adv, p["x_train"])) @ c
        ok1 = losses.predictions_correct(f_adv, p["y_eval"], task)
        np.testing.assert_array_equal(clean[j], ok0)
        np.testing.assert_array_equal(robust[j], ok0 & ok1)


def test_rank_label_sets_ranks_each_label_set_by_its_own_robustness():
    p = feature_problem("fc", "binary")
    cand = np.arange(N_TRAIN)
    project = PairProjector(p["kernel_fn"], p["x_train"], 8, N_TRAIN)
    lf = scoring.label_free_projections(
        eigvals=p["eigvals"],
        eigvecs=p["eigvecs"],
        indices=cand,
        k_eval_train=p["k_eval_train"],
        grad_p=p["contract"](p["eigvecs"]),
        x_eval=p["x_eval"].reshape(N_EVAL, -1),
        project=project,
        eps=EPS,
    )
    perms = label_permutations(N_TRAIN, 3, 0)
    ys = np.concatenate(
        [p["y_train"][None], rescore.permuted_targets(p["y_train"], perms)]
    )
    ranked, rob = topr.rank_label_sets(lf, ys, p["y_eval"], "binary")
    chex.assert_shape(ranked, (4, N_TRAIN))
    for j, y in enumerate(ys):
        s = rescore.feature_scores(lf, y, p["y_eval"], p["labels_eval"], "binary", 2)
        np.testing.assert_allclose(rob[j], s.robustness)
        np.testing.assert_array_equal(
            ranked[j], topr.robustness_ranking(s.robustness, cand)
        )


def test_robustness_ranking_is_stable_and_descending():
    np.testing.assert_array_equal(
        topr.robustness_ranking(np.array([0.2, 0.5, 0.5, 0.1]), [7, 9, 3, 1]),
        [3, 9, 7, 1],
    )
