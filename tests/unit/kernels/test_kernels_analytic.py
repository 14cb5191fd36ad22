"""Tests of ntkadv.kernels.analytic: analytic NTKs (stax and supp. Eq. 29)."""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import neural_tangents as nt
import numpy as np
import pytest
from neural_tangents import stax

from _shared import SPECS
from ntkadv.kernels import analytic

SHAPE = (5, 5, 2)  # tiny "images" (H, W, C)
W_STD, B_STD = math.sqrt(2.0), 0.1


def _x(n, seed=0, shape=SHAPE):
    return np.random.default_rng(seed).uniform(size=(n, *shape))


def _arccos_ntk_fc1(x1, x2, w_std=W_STD, b_std=B_STD):
    """Closed-form NNGP / NTK of Dense-ReLU-Dense in NTK parameterization (numpy).

    Σ¹ = w² xᵀx'/d + b²; with θ the angle of Σ¹:
    E[relu relu] = √(Σ¹₁₁Σ¹₂₂) (sin θ + (π − θ) cos θ) / (2π),
    E[relu' relu'] = (π − θ)/(2π);
    NNGP = w² E[relu relu] + b², NTK = NNGP + w² E[relu' relu'] Σ¹.
    """
    a, b = x1.reshape(len(x1), -1), x2.reshape(len(x2), -1)
    d = a.shape[1]
    s12 = w_std**2 * a @ b.T / d + b_std**2
    s11 = w_std**2 * np.sum(a * a, 1) / d + b_std**2
    s22 = w_std**2 * np.sum(b * b, 1) / d + b_std**2
    norm = np.sqrt(s11[:, None] * s22[None, :])
    theta = np.arccos(np.clip(s12 / norm, -1.0, 1.0))
    e_relu = norm * (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / (2 * np.pi)
    e_step = (np.pi - theta) / (2 * np.pi)
    nngp = w_std**2 * e_relu + b_std**2
    return nngp, nngp + w_std**2 * e_step * s12


@pytest.mark.parametrize("depth", [1, 2])
@pytest.mark.parametrize("get", ["ntk", "nngp"])
def test_fc_and_conv_equal_explicit_stax(depth, get):
    """kernel_fn_from_spec == the stax network written out by hand (experiments.md)."""
    x1, x2 = _x(4, 5), _x(3, 6)
    dense = {"W_std": W_STD, "b_std": B_STD, "parameterization": "ntk"}
    fc = [stax.Flatten()]
    conv = []
    for _ in range(depth):
        fc += [stax.Dense(64, **dense), stax.Relu()]
        conv += [stax.Conv(64, (3, 3), padding="SAME", **dense), stax.Relu()]
    fc += [stax.Dense(1, **dense)]
    conv += [stax.Flatten(), stax.Dense(1, **dense)]
    for family, layers in [("fc", fc), ("conv", conv)]:
        ref = stax.serial(*layers)[2](x1, x2, get)
        got = analytic.kernel_fn_from_spec({"family": family, "depth": depth}, get)
        np.testing.assert_allclose(got(x1, x2), ref, rtol=1e-12)


@pytest.mark.parametrize("jit", [False, True])
def test_fc1_matches_closed_form_arccos(jit):
    """Independent check: FC1 NNGP/NTK against the arc-cosine formulas (numpy)."""
    x1, x2 = _x(5, 7), _x(6, 8)
    nngp, ntk = _arccos_ntk_fc1(x1, x2)
    for get, ref in [("nngp", nngp), ("ntk", ntk)]:
        fn = analytic.kernel_fn_from_spec(SPECS["fc1"], get)
        fn = jax.jit(fn) if jit else fn
        np.testing.assert_allclose(fn(x1, x2), ref, rtol=1e-10)


@pytest.mark.parametrize("jit", [False, True])
def test_twolayer_matches_closed_form(jit):
    x1, x2 = _x(5, 13), _x(4, 14)
    fn = jax.jit(analytic.twolayer_ntk) if jit else analytic.twolayer_ntk
    np.testing.assert_allclose(fn(x1, x2), _twolayer_closed_form(x1, x2), rtol=1e-12)


def _twolayer_closed_form(x1, x2):
    a, b = x1.reshape(len(x1), -1), x2.reshape(len(x2), -1)
    dots = a @ b.T
    cos = dots / np.outer(np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1))
    return (0.5 - np.arccos(np.clip(cos, -1, 1)) / (2 * np.pi)) * dots


def _wide_twolayer_entk(x1, x2, width, w_std, seed=0):
    """Empirical NTK wrt W of f(x) = m^{-1/2} A relu(W x), A ∈ {±1} frozen (Eq. 28)."""
    k_w, k_a = jax.random.split(jax.random.PRNGKey(seed))
    d = x1.reshape(len(x1), -1).shape[1]
    w = w_std * jax.random.normal(k_w, (width, d))
    a = jax.random.rademacher(k_a, (width,)).astype(w.dtype)

    def apply_fn(params, x):
        h = jax.nn.relu(x.reshape(x.shape[0], -1) @ params.T)
        return (h @ a / jnp.sqrt(width))[:, None]

    entk = nt.empirical_ntk_fn(apply_fn, trace_axes=(), vmap_axes=0)
    return np.asarray(entk(x1, x2, w))[:, :, 0, 0]


@pytest.mark.parametrize("w_std", [0.01, 1.0])
def test_twolayer_matches_wide_network(w_std):
    """Supp. Eq. 29 vs the empirical NTK of a width-20000 Eq. 28 net (MC error ~1%)."""
    x1 = _x(4, 9, shape=(12,)) - 0.3
    x2 = np.concatenate([x1[:2], _x(3, 10, shape=(12,)) - 0.3])  # incl. x = x'
    theory = np.asarray(analytic.twolayer_ntk(x1, x2))
    entk = _wide_twolayer_entk(x1, x2, 20000, w_std)
    scale = np.abs(theory).max()
    np.testing.assert_allclose(entk, theory, atol=0.03 * scale, rtol=0.03)


def test_twolayer_entk_independent_of_weight_scale():
    """eNTK wrt W only sees the signs of w_r·x: scaling W leaves it unchanged."""
    x = _x(3, 11, shape=(8,)) - 0.5
    small = _wide_twolayer_entk(x, x, 500, 0.01, seed=3)
    big = _wide_twolayer_entk(x, x, 500, 1.0, seed=3)
    np.testing.assert_allclose(small, big, rtol=1e-12)


def test_twolayer_on_real_mnist(shared_data):
    """Eq. 29 vs a width-20000 Eq. 28 net on real MNIST digits (small angles).

    The eNTK wrt W is written out, (1/m) Σ_r 1[w_r·x > 0] 1[w_r·x' > 0] xᵀx' (a_r² = 1;
    the autodiff route is checked on small inputs above).
    """
    from ntkadv.data import SOURCES, read_mnist_idx

    name = "t10k-images-idx3-ubyte.gz"
    images = read_mnist_idx(shared_data / "mnist" / name, SOURCES["mnist"].files[name])
    x = images[:5].reshape(5, -1).astype(np.float64) / 255.0
    w = 0.01 * np.random.default_rng(1).standard_normal((20000, x.shape[1]))
    active = (x @ w.T > 0).astype(np.float64)  # (n, m)
    entk = (active @ active.T) / w.shape[0] * (x @ x.T)
    theory = np.asarray(analytic.twolayer_ntk(x, x))
    np.testing.assert_allclose(entk, theory, rtol=0.03)


def test_twolayer_gradient_finite_at_coincident_points():
    """∇ₓΘ(x, x') at x = x' is finite and equals the central difference (= x'/2)."""
    x = jnp.asarray(_x(1, 12, shape=(6,)))

    def theta(z):
        return analytic.twolayer_ntk(z, x)[0, 0]

    g = jax.grad(theta)(x)
    chex.assert_tree_all_finite(g)
    np.testing.assert_allclose(g[0], x[0] / 2, rtol=1e-12)
    v = jnp.asarray(np.random.default_rng(0).standard_normal((1, 6)))
    # at the kink the two sides differ at O(h) (the angle is |h v_perp| / |x ± h v|)
    h = 1e-6
    fd = (theta(x + h * v) - theta(x - h * v)) / (2 * h)
    np.testing.assert_allclose(jnp.vdot(g, v), fd, rtol=1e-5)


def test_spec_errors():
    with pytest.raises(ValueError):
        analytic.kernel_fn_from_spec({"family": "twolayer"}, get="nngp")
    with pytest.raises(ValueError):
        analytic.kernel_fn_from_spec({"family": "rbf"})
    with pytest.raises(ValueError):
        analytic.kernel_fn_from_spec(SPECS["fc1"], get="cov")
    spec = analytic.full_spec({"family": "conv"})
    assert spec["W_std"] == W_STD and spec["b_std"] == B_STD
    assert spec["parameterization"] == "ntk" and spec["filter_size"] == 3
    assert set(analytic.FAMILIES) == {s["family"] for s in SPECS.values()}
    for family in analytic.FAMILIES:
        assert analytic.full_spec({"family": family}) == {
            **analytic.SPEC_DEFAULTS,
            "family": family,
        }
    with pytest.raises(ValueError):
        analytic.stax_from_spec({"family": "twolayer"})


def test_safe_arccos_snaps_near_parallel_and_has_a_finite_gradient():
    """Cosines within 100 eps of ±1 are (anti)parallel; the gradient there is 0."""
    c = jnp.array([1.0, 1.0 - 1e-15, 0.5, -1.0 + 1e-15, -1.0])
    got = analytic._safe_arccos(c)
    np.testing.assert_allclose(got, [0, 0, np.arccos(0.5), np.pi, np.pi], rtol=1e-15)
    g = jax.vmap(jax.grad(analytic._safe_arccos))(c)
    chex.assert_tree_all_finite(g)
    np.testing.assert_array_equal(g[np.array([0, 1, 3, 4])], 0.0)
    np.testing.assert_allclose(g[2], -1.0 / np.sqrt(0.75), rtol=1e-12)
