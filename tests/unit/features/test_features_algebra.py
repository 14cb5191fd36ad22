"""Tests of ntkadv.features.algebra: eigenfeature weights, outputs and gradients.

Every property is checked against an independent computation: per-feature autodiff
through `kernel_fn` (never the Jacobian contraction under test) and
`np.linalg.solve` for kernel regression.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from _shared import (
    FEATURE_SHAPE,
    N_EVAL,
    N_TRAIN,
    feature_problem,
    reference_loss,
)
from ntkadv.features import algebra
from ntkadv.kernels import jacobians


@pytest.mark.parametrize("task", ["binary", "multiclass"])
@pytest.mark.parametrize("family", ["fc", "twolayer"])
def test_features_sum_to_kernel_regression(family, task):
    p = feature_problem(family, task)
    everything = np.arange(N_TRAIN)
    c = algebra.feature_coefficients(
        p["eigvals"], p["eigvecs"], p["y_train"], everything
    )
    c_solve = np.linalg.solve(p["gram"], p["y_train"])
    np.testing.assert_allclose(c.sum(axis=1), c_solve, rtol=1e-8, atol=1e-10)
    w = algebra.feature_weights(p["eigvals"], p["eigvecs"], p["y_train"], everything)
    f = algebra.feature_outputs(p["k_eval_train"], p["eigvecs"], w)
    chex.assert_shape(f, (N_TRAIN, N_EVAL, p["y_train"].shape[1]))
    np.testing.assert_allclose(
        f.sum(axis=0), p["k_eval_train"] @ c_solve, rtol=1e-8, atol=1e-10
    )


@pytest.mark.parametrize("task", ["binary", "multiclass"])
@pytest.mark.parametrize("family", ["fc", "conv"])
def test_contraction_gradients_equal_per_feature_autodiff(family, task):
    p = feature_problem(family, task)
    idx = np.array([0, 3, 11, N_TRAIN - 1])
    w = algebra.feature_weights(p["eigvals"], p["eigvecs"], p["y_train"], idx)
    grad_p = p["contract"](p["eigvecs"][:, idx])  # ONE contraction for all features
    got = algebra.feature_input_gradients(grad_p, w)  # (K, m, d, k)
    coefs = algebra.feature_coefficients(p["eigvals"], p["eigvecs"], p["y_train"], idx)
    for j in range(idx.size):
        for r in range(w.shape[1]):

            def out(x, c=coefs[:, j, r]):
                return jnp.sum(p["kernel_fn"](x, p["x_train"]) @ c)

            ref = np.asarray(jax.grad(out)(p["x_eval"])).reshape(N_EVAL, -1)
            np.testing.assert_allclose(got[j, :, :, r], ref, rtol=1e-7, atol=1e-9)
    # loss gradients: the rank-one shortcut vs autodiff of the loss itself
    f = algebra.feature_outputs(p["k_eval_train"], p["eigvecs"][:, idx], w)
    lg = algebra.feature_loss_gradients(f, grad_p, w, p["y_eval"], task)
    chex.assert_shape(lg, (idx.size, N_EVAL, int(np.prod(FEATURE_SHAPE))))
    for j in range(idx.size):

        def total(x, c=coefs[:, j]):
            return reference_loss(
                p["kernel_fn"](x, p["x_train"]) @ c, p["y_eval"], task
            )

        ref = np.asarray(jax.grad(total)(p["x_eval"])).reshape(N_EVAL, -1)
        np.testing.assert_allclose(lg[j], ref, rtol=1e-7, atol=1e-9)


def test_fgsm_points_stay_in_ball_and_box():
    rng = np.random.default_rng(5)
    x = rng.uniform(size=(7, 30))
    grad = rng.normal(size=(3, 7, 30))
    x_adv = algebra.fgsm_points(x[None], grad, 0.2)
    assert np.all((x_adv >= 0) & (x_adv <= 1))
    assert np.abs(x_adv - x[None]).max() <= 0.2 + 1e-15
    inside = (x > 0.2) & (x < 0.8)
    np.testing.assert_allclose(
        (x_adv - x[None])[:, inside], 0.2 * np.sign(grad)[:, inside], atol=1e-15
    )


@pytest.mark.parametrize("on_disk", [False, True])
@pytest.mark.parametrize("family", ["fc", "conv"])
def test_eval_subset_rows_of_the_project_cache(family, on_disk, tmp_path):
    """Row ranges of the real InputJacobian (factored / dense, memory / file) agree
    with the brute-force Jacobian contraction."""
    p = feature_problem(family, "binary")
    if on_disk:
        path = tmp_path / "jacobian.h5"
        jacobians.write_input_jacobian(
            path,
            p["kernel_fn"],
            jacobians.jacobian_form(family),
            p["x_eval"],
            p["x_train"],
            block_size=10,
        )
        jac = jacobians.load_input_jacobian(path, p["kernel_fn"])
    else:
        build = jacobians.input_jacobian_fn(p["kernel_fn"], family)
        jac = build(p["x_eval"], p["x_train"], block_size=10)
    c = p["eigvecs"][:, :5]
    ref = p["contract"](c)
    rtol = 1e-10 if jac.form == "factored" else 1e-5  # dense tiles are float32
    for i0, i1 in ((0, N_EVAL), (0, 2), (2, 5)):
        got = jac.eval_subset(i0, i1).contract(c)
        chex.assert_shape(got, (i1 - i0, ref.shape[1], 5))
        np.testing.assert_allclose(got, ref[i0:i1], rtol=rtol, atol=rtol * 1e-2)
