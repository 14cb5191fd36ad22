"""Tests of ntkadv.spectra.predictor: f_t of supp. Eq. 3, its input gradient (Eq. 9)."""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from _shared import (
    IMAGE_SHAPE,
    KERNELS,
    JacobianFromAutodiff,
    rbf_kernel_fn,
    regression_data,
)
from ntkadv.kernels import analytic, jacobians
from ntkadv.spectra import eigh, predictor


def test_time_weights_limits():
    lam = np.array([10.0, 1.0, 1e-3, 1e-12])
    np.testing.assert_array_equal(predictor.time_weights(lam, 0.0, 0.5), 0.0)
    np.testing.assert_allclose(predictor.time_weights(lam, math.inf, 0.5), 1.0 / lam)
    # small lr*lam*t: w ~ lr*t (first-order expansion), no cancellation
    np.testing.assert_allclose(
        predictor.time_weights(lam[-1:], 1.0, 1.0), 1.0, rtol=1e-9
    )
    with pytest.raises(ValueError):
        predictor.time_weights(lam, -1.0, 1.0)


@pytest.mark.parametrize("kernel", sorted(KERNELS))
@pytest.mark.parametrize("t", [0.0, 0.3, 5.0, math.inf])
@pytest.mark.parametrize("k", [1, 3])
def test_predictor_matches_matrix_exponential(kernel, t, k):
    """c_t = Θ⁻¹ (I − expm(−ηΘt)) Y, computed with scipy expm and a linear solve."""
    x_train, x_test, y = regression_data(k=k)
    kernel_fn, lr = KERNELS[kernel], 0.7
    gram = np.asarray(kernel_fn(x_train, x_train))
    spec = eigh.eigendecompose(gram)
    c = predictor.coefficients(spec, y, t, lr)
    if math.isinf(t):
        ref = np.linalg.solve(gram, y)
    else:
        ref = np.linalg.solve(
            gram, (np.eye(len(gram)) - scipy.linalg.expm(-lr * t * gram)) @ y
        )
    np.testing.assert_allclose(c, ref, rtol=1e-6, atol=1e-8 * np.abs(ref).max())
    f = predictor.predict(np.asarray(kernel_fn(x_test, x_train)), c)
    chex.assert_shape(f, (x_test.shape[0], k))
    np.testing.assert_allclose(
        f,
        np.asarray(predictor.predictor_fn(kernel_fn, x_train, c)(x_test)),
        rtol=1e-9,
        atol=1e-12,
    )


@pytest.mark.parametrize("kernel", sorted(KERNELS))
def test_f0_is_zero_and_ft_converges_to_finf(kernel):
    x_train, x_test, y = regression_data(k=3, seed=1)
    kernel_fn = KERNELS[kernel]
    spec = eigh.eigendecompose(np.asarray(kernel_fn(x_train, x_train)))
    k_test = np.asarray(kernel_fn(x_test, x_train))
    ts = [0.0, 1.0, 1e2, 1e4, 1e6, 1e9, 1e12]
    paths = predictor.coefficients_path(spec, y, [*ts, math.inf], lr=1.0)
    f = np.stack([k_test @ c for c in paths])
    np.testing.assert_array_equal(f[0], 0.0)
    err = np.abs(f[:-1] - f[-1]).max(axis=(1, 2))
    assert np.all(np.diff(err) <= 1e-12)  # monotone approach (every mode decays)
    assert err[-1] < 1e-8 * np.abs(f[-1]).max()
    # f_inf interpolates the training data
    np.testing.assert_allclose(eigh.reconstruct(spec) @ paths[-1], y, atol=1e-6)


@pytest.mark.parametrize("kernel", sorted(KERNELS))
@pytest.mark.parametrize("t", [0.5, math.inf])
@pytest.mark.parametrize("k", [1, 3])
def test_input_gradient_from_cache_equals_autodiff(kernel, t, k):
    """Supp. Eq. 9 (D(x)ᵀ c_t) vs jax.grad of the kernel predictor, per output."""
    x_train, x_test, y = regression_data(k=k, seed=2)
    kernel_fn = KERNELS[kernel]
    spec = eigh.eigendecompose(np.asarray(kernel_fn(x_train, x_train)))
    c = predictor.coefficients(spec, y, t, lr=1.0)
    cached = predictor.input_gradient(
        JacobianFromAutodiff(kernel_fn, x_test, x_train), c
    )
    chex.assert_shape(cached, (x_test.shape[0], int(np.prod(IMAGE_SHAPE)), k))
    f = predictor.predictor_fn(kernel_fn, x_train, c)
    for r in range(k):  # jax.grad of the scalar predictor output, point by point
        g = jax.vmap(jax.grad(lambda xi, r=r: f(xi[None])[0, r]))(jnp.asarray(x_test))
        np.testing.assert_allclose(
            cached[:, :, r],
            np.asarray(g).reshape(len(x_test), -1),
            rtol=1e-9,
            atol=1e-12,
        )
    vjp_route = predictor.input_gradient_fn(kernel_fn, x_train, c)(jnp.asarray(x_test))
    np.testing.assert_allclose(cached, np.asarray(vjp_route), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("form", ["dense", "factored"])
@pytest.mark.parametrize("t", [2.0, math.inf])
def test_input_gradient_via_jacobian_module_equals_autodiff(form, t):
    """The project's cache (`ntkadv.kernels.jacobians`, in memory) per Eq. 9."""
    # dense: any kernel; factored: kernels of inner products only (supp. Eq. 29)
    kernel_fn = rbf_kernel_fn if form == "dense" else analytic.twolayer_ntk
    x_train, x_test, y = regression_data(k=3, seed=3)
    spec = eigh.eigendecompose(np.asarray(kernel_fn(x_train, x_train)))
    c = predictor.coefficients(spec, y, t, lr=1.0)
    jac = jacobians.input_jacobian_fn(kernel_fn, form)(x_test, x_train, 8)
    cached = predictor.input_gradient(jac, c)
    auto = predictor.input_gradient_fn(kernel_fn, x_train, c)(jnp.asarray(x_test))
    np.testing.assert_allclose(cached, np.asarray(auto), rtol=1e-7, atol=1e-12)
