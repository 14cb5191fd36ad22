"""Tests of ntkadv.features.prop1: Proposition 1 (∇L = Σ_i α_i ∇L⁽ⁱ⁾) in float64."""

from __future__ import annotations

import chex
import jax
import numpy as np

from _shared import N_EVAL, N_TRAIN, feature_problem, reference_loss
from ntkadv.features import algebra, prop1


def test_proposition1_decomposition_float64():
    p = feature_problem("fc", "binary")
    everything = np.arange(N_TRAIN)
    w = algebra.feature_weights(p["eigvals"], p["eigvecs"], p["y_train"], everything)
    f_feat = algebra.feature_outputs(p["k_eval_train"], p["eigvecs"], w)
    lg = algebra.feature_loss_gradients(
        f_feat, p["contract"](p["eigvecs"]), w, p["y_eval"], "binary"
    )
    c_solve = np.linalg.solve(p["gram"], p["y_train"])
    f_full = p["k_eval_train"] @ c_solve
    np.testing.assert_allclose(f_feat.sum(axis=0), f_full, rtol=1e-9, atol=1e-11)
    alpha, decomposed = prop1.proposition1_decomposition(
        f_full, f_feat, lg, p["y_eval"]
    )
    chex.assert_tree_all_finite(alpha)

    def total(x):
        return reference_loss(
            p["kernel_fn"](x, p["x_train"]) @ c_solve, p["y_eval"], "binary"
        )

    ref = np.asarray(jax.grad(total)(p["x_eval"])).reshape(N_EVAL, -1)
    scale = np.abs(ref).max()
    assert np.abs(decomposed - ref).max() <= 1e-10 * scale


def test_proposition1_check_on_a_kernel_problem():
    p = feature_problem("twolayer", "binary")
    res = prop1.proposition1_check(
        gram=p["gram"],
        eigvals=p["eigvals"],
        eigvecs=p["eigvecs"],
        y_train=p["y_train"],
        k_eval_train=p["k_eval_train"],
        y_eval=p["y_eval"],
        contract=p["contract"],
    )
    assert res["grad_rel_err"] < 1e-10 and res["sum_rel_err"] < 1e-10
    # a wrong spectrum is detected (the check is not vacuous)
    bad = prop1.proposition1_check(
        gram=p["gram"],
        eigvals=p["eigvals"] * 1.01,
        eigvecs=p["eigvecs"],
        y_train=p["y_train"],
        k_eval_train=p["k_eval_train"],
        y_eval=p["y_eval"],
        contract=p["contract"],
    )
    assert bad["grad_rel_err"] > 1e-4 and bad["sum_rel_err"] > 1e-4
