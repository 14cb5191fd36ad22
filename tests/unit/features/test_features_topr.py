"""Tests of ntkadv.features.topr: top-r robust kernels Θ'_r and their attacks.

`np.linalg.solve` for the full kernel machine and `np.linalg.pinv` for Θ'_r.
"""

from __future__ import annotations

import chex
import numpy as np
import pytest

from _shared import EPS, N_EVAL, N_TRAIN, feature_problem
from ntkadv.attacks.pgd import pgd
from ntkadv.features import topr


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
        chex.assert_shape(res[key], (rs.size,))
    assert res["clean"][-1] == res["full_clean"]
    assert res["fgsm_own"][-1] == res["fgsm_transfer"][-1] == res["full_fgsm"]
    assert res["pgd_own"][-1] == res["pgd_transfer"][-1] == res["full_pgd"]


def test_robustness_ranking_is_stable_and_descending():
    np.testing.assert_array_equal(
        topr.robustness_ranking(np.array([0.2, 0.5, 0.5, 0.1]), [7, 9, 3, 1]),
        [3, 9, 7, 1],
    )
