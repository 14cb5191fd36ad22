"""Tests of ntkadv.transfer: the net of supp. Eq. 28, its GD training, its NTK limit,
the time alignment t = epoch / n, cosine similarity (Eq. 30) and own-FGSM."""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkadv.attacks.closed_form import fgsm_step, perturb
from ntkadv.claims.nulls import mismatched, random_signs
from ntkadv.kernels import jacobians
from ntkadv.kernels.analytic import twolayer_ntk
from ntkadv.losses import predictions_correct
from ntkadv.spectra import eigh, predictor
from ntkadv.transfer import net as twolayer
from ntkadv.transfer.checks import DivergenceError
from ntkadv.transfer.experiment import (
    eval_epochs,
    nearest_epoch,
    run_transfer,
    transfer_epochs,
)
from ntkadv.transfer.records import METRICS, POINT_ARRAYS, REFERENCE_POINT_ARRAYS
from ntkadv.transfer.reference import (
    fit_time_factor,
    ntk_reference,
    ntk_transfer_reference,
)


def _inputs(n, d, seed=0, rank=None):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, d))
    if rank is not None:  # rank-deficient inputs (like MNIST's empty border pixels)
        x = rng.uniform(size=(n, rank)) @ rng.uniform(size=(rank, d)) / rank
    return x


def _targets(n, k, seed=1):
    rng = np.random.default_rng(seed)
    if k == 1:
        return rng.choice([-1.0, 1.0], size=(n, 1))
    return np.eye(k)[rng.integers(0, k, n)]


# ---------------------------------------------------------------- the network


@pytest.mark.parametrize("k", [1, 10])
@pytest.mark.parametrize("w_std", [0.01, 1.0])
def test_init_statistics(w_std, k):
    net = twolayer.init_net(jax.random.PRNGKey(3), d=40, m=5000, k=k, w_std=w_std)
    chex.assert_shape(net.w0, (5000, 40))
    chex.assert_shape(net.a, (5000, k))
    assert net.w0.dtype == jnp.float32
    w = np.asarray(net.w0, dtype=np.float64)
    assert abs(w.mean()) < 4 * w_std / math.sqrt(w.size)
    assert abs(w.std() / w_std - 1.0) < 0.01
    a = np.asarray(net.a)
    assert set(np.unique(a)) == {-1.0, 1.0}
    assert abs((a > 0).mean() - 0.5) < 4 * 0.5 / math.sqrt(a.size)


def test_init_is_deterministic_per_key():
    a = twolayer.init_net(jax.random.PRNGKey(0), 5, 7, 2)
    b = twolayer.init_net(jax.random.PRNGKey(0), 5, 7, 2)
    c = twolayer.init_net(jax.random.PRNGKey(1), 5, 7, 2)
    np.testing.assert_array_equal(a.w0, b.w0)
    assert not np.array_equal(np.asarray(a.w0), np.asarray(c.w0))


def test_apply_matches_loop():
    x = _inputs(4, 6)
    net = twolayer.init_net(jax.random.PRNGKey(2), 6, 9, 3, 1.0, jnp.float64)
    w, a = np.asarray(net.w0), np.asarray(net.a)
    expected = np.array(
        [[sum(a[r, j] * max(w[r] @ xi, 0.0) for r in range(9)) / 3.0 for j in range(3)]
         for xi in x]
    )  # fmt: skip
    np.testing.assert_allclose(twolayer.apply(net.w0, net.a, x), expected, rtol=1e-12)


@pytest.mark.parametrize("k", [1, 3])
def test_autodiff_gradient_equals_closed_form(k):
    x, y = _inputs(12, 7), _targets(12, k)
    net = twolayer.init_net(jax.random.PRNGKey(0), 7, 30, k, 1.0, jnp.float64)
    auto = jax.grad(twolayer.mse_loss)(net.w0, net.a, x, y)
    closed = twolayer.mse_grad(net.w0, net.a, x, y)
    chex.assert_trees_all_close(auto, closed, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize(("n", "d", "rank"), [(12, 7, None), (6, 15, None), (10, 9, 4)])
def test_row_space_gd_equals_gd_on_w(n, d, rank, k):
    """Steps in row-space coordinates equal hand-written GD steps on W, A frozen."""
    x, y = _inputs(n, d, rank=rank), _targets(n, k)
    net = twolayer.init_net(jax.random.PRNGKey(5), d, 40, k, 1.0, jnp.float64)
    basis = jnp.asarray(twolayer.row_space_basis(x))
    assert basis.shape[1] == min(n, d, rank or d)
    problem = twolayer.gd_problem(net, basis, x, y)
    w0t = jnp.asarray(np.asarray(net.w0).T.copy())
    np.testing.assert_allclose(
        twolayer.gd_problem(net, basis, x, y, w0t).z0, problem.z0, rtol=1e-13
    )
    run = jax.jit(twolayer.gd_run_fn(0.05))
    c = jnp.zeros((40, basis.shape[1]))
    w = net.w0
    for steps in (1, 3):
        c = run(c, problem, steps)
        for _ in range(steps):
            w = w - 0.05 * twolayer.mse_grad(w, net.a, x, y)
        chex.assert_trees_all_close(
            twolayer.first_layer(net, basis, c), w, rtol=1e-9, atol=1e-12
        )
    # the second layer never changes: the outputs are those of (W, A_init)
    g = twolayer.difference_fn(net, basis)
    expected = twolayer.apply(w, net.a, x) - twolayer.apply(net.w0, net.a, x)
    chex.assert_trees_all_close(g(c, jnp.asarray(x)), expected, rtol=1e-9, atol=1e-12)
    loss = twolayer.reduced_loss(c, *problem)
    np.testing.assert_allclose(loss, twolayer.mse_loss(w, net.a, x, y), rtol=1e-10)


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize(("n", "d", "rank"), [(12, 7, None), (6, 15, None), (10, 9, 4)])
def test_dual_gd_equals_row_space_gd(n, d, rank, k):
    """GD in dual coordinates (C = αᵀ P, the job's loop) equals row-space GD and GD
    on W in float64, over uneven intervals, with the state donated."""
    x, y = _inputs(n, d, rank=rank), _targets(n, k)
    net = twolayer.init_net(jax.random.PRNGKey(5), d, 40, k, 1.0, jnp.float64)
    basis = jnp.asarray(twolayer.row_space_basis(x))
    problem = twolayer.gd_problem(net, basis, x, y)
    run = jax.jit(twolayer.gd_run_fn(0.05))
    dual = jax.jit(twolayer.gd_dual_run_fn(0.05), donate_argnums=0)
    gram = twolayer.dual_gram(problem)
    chex.assert_shape(gram, (n, n))
    c = jnp.zeros((40, basis.shape[1]))
    alpha = jnp.zeros((n, 40))
    w = net.w0
    for steps in (1, 3, 7):
        c = run(c, problem, steps)
        alpha = dual(alpha, problem, gram, steps)
        for _ in range(steps):
            w = w - 0.05 * twolayer.mse_grad(w, net.a, x, y)
        c_dual = twolayer.coordinates(alpha, problem)
        chex.assert_trees_all_close(c_dual, c, rtol=1e-10, atol=1e-13)
        chex.assert_trees_all_close(
            twolayer.first_layer(net, basis, c_dual), w, rtol=1e-9, atol=1e-12
        )


@pytest.mark.parametrize(("n", "d", "state_rows"), [(16, 5, 40), (8, 15, 8)])
def test_gd_loop_takes_the_cheaper_exact_loop(n, d, state_rows):
    """`experiment.gd_loop`: row-space coordinates C (m, r) when n > 2 r (16 points
    of rank 5: C is (40, 5)), dual α (n, m) when n <= 2 r (8 points of rank 8: α is
    (8, 40)); either way the coordinates equal `gd_run_fn`'s."""
    from ntkadv.transfer.experiment import gd_loop

    x, y = _inputs(n, d), _targets(n, 2)
    net = twolayer.init_net(jax.random.PRNGKey(3), d, 40, 2, 1.0, jnp.float64)
    basis = jnp.asarray(twolayer.row_space_basis(x))
    problem = twolayer.gd_problem(net, basis, x, y)
    state, advance, to_c = gd_loop(problem, 0.05, jnp.float64)
    assert state.shape[0] == state_rows
    c = jnp.zeros((40, basis.shape[1]))
    run = jax.jit(twolayer.gd_run_fn(0.05))
    for steps in (2, 5):
        state = advance(state, steps)
        c = run(c, problem, steps)
        chex.assert_trees_all_close(to_c(state), c, rtol=1e-10, atol=1e-13)


def test_precomputed_initial_preactivations_change_nothing():
    """`outputs_fn_t` / `outputs_and_loss_gradient` with x W_0ᵀ passed in (the job's
    cache for its fixed inputs) return what they compute without it."""
    n, d, m, b, k = 10, 9, 30, 5, 3
    x, y = _inputs(n, d), _targets(n, k)
    x_test, y_test = jnp.asarray(_inputs(b, d, seed=3)), jnp.asarray(_targets(b, k))
    net = twolayer.init_net(jax.random.PRNGKey(2), d, m, k, 1.0, jnp.float64)
    basis = jnp.asarray(twolayer.row_space_basis(x))
    c = jax.jit(twolayer.gd_run_fn(0.1))(
        jnp.zeros((m, basis.shape[1])), twolayer.gd_problem(net, basis, x, y), 4
    )
    w0t = jnp.asarray(np.asarray(net.w0).T.copy())
    z0 = x_test @ w0t
    np.testing.assert_allclose(
        twolayer.outputs_fn_t(w0t, net.a, basis, c, x_test, z0),
        twolayer.outputs_fn_t(w0t, net.a, basis, c, x_test),
        rtol=1e-13,
    )
    both = [
        twolayer.outputs_and_loss_gradient(
            net, w0t, basis, c, x_test, y_test, "multiclass", z0=pre
        )
        for pre in (z0, None)
    ]
    chex.assert_trees_all_close(both[0], both[1], rtol=1e-13)


@pytest.mark.parametrize("rank", [None, 3])
def test_row_space_basis(rank):
    x = _inputs(8, 11, rank=rank)
    v = twolayer.row_space_basis(x)
    chex.assert_shape(v, (11, rank or 8))
    np.testing.assert_allclose(v.T @ v, np.eye(v.shape[1]), atol=1e-12)
    np.testing.assert_allclose(x @ v @ v.T, x, atol=1e-12)


# ---------------------------------------------------------------- NTK limit


def test_empirical_ntk_matches_analytic_kernel():
    """Θ̂ = Σ_W ∂f/∂W ∂f/∂Wᵀ of a wide net ≈ supp. Eq. 29 ⊗ I_k."""
    m, k = 40000, 2
    x = _inputs(5, 8, seed=4)
    net = twolayer.init_net(jax.random.PRNGKey(7), 8, m, k, 0.01, jnp.float64)
    jac = jax.jacrev(twolayer.apply)(net.w0, net.a, x)  # (n, k, m, d)
    flat = np.asarray(jac).reshape(5, k, -1)
    emp = np.einsum("ipz,jqz->ijpq", flat, flat)  # (n, n, k, k)
    theta = np.asarray(twolayer_ntk(jnp.asarray(x), jnp.asarray(x)))
    scale = np.abs(theta).max()
    for p in range(k):
        np.testing.assert_allclose(
            emp[:, :, p, p], theta, atol=6 * scale / math.sqrt(m)
        )
    np.testing.assert_allclose(emp[:, :, 0, 1], 0.0, atol=6 * scale / math.sqrt(m))


def test_lazy_net_matches_ntk_at_t_epoch_over_n():
    """Small lr, large width: f − f_0 after τ epochs ≈ f_t at t = τ / n (mean loss)."""
    n, d, m, k, epochs = 16, 6, 20000, 1, 60
    x, y = _inputs(n, d, seed=8), _targets(n, k)
    x_test = _inputs(6, d, seed=9)
    net = twolayer.init_net(jax.random.PRNGKey(1), d, m, k, 1.0, jnp.float64)
    gram = np.asarray(twolayer_ntk(jnp.asarray(x), jnp.asarray(x)))
    k_test = np.asarray(twolayer_ntk(jnp.asarray(x_test), jnp.asarray(x)))
    spec = eigh.eigendecompose(gram)
    lr = 0.05 * n / spec.eigvals[0]  # lr * lambda_max / n = 0.05: gradient-flow regime
    assert twolayer.gd_stability(spec.eigvals[0], n, lr) == pytest.approx(0.05)
    basis = jnp.asarray(twolayer.row_space_basis(x))
    c = jax.jit(twolayer.gd_run_fn(lr))(
        jnp.zeros((m, basis.shape[1])), twolayer.gd_problem(net, basis, x, y), epochs
    )
    f_net = np.asarray(twolayer.difference_fn(net, basis)(c, jnp.asarray(x_test)))
    # the linearised net fits the residual Y - f_0(X) (exact lazy limit)
    resid = y - np.asarray(twolayer.apply(net.w0, net.a, x))

    def f_ntk(t):
        return predictor.predict(k_test, predictor.coefficients(spec, resid, t, lr))

    err = np.linalg.norm(f_net - f_ntk(twolayer.ntk_time(epochs, n)))
    assert err < 0.05 * np.linalg.norm(f_net)
    # the sum-of-squares time t = epoch is far off (n times longer training)
    assert np.linalg.norm(f_net - f_ntk(float(epochs))) > 0.3 * np.linalg.norm(f_net)


@pytest.mark.parametrize(
    ("stability", "diverges"), [(0.5, False), (1.5, False), (2.5, True)]
)
def test_gd_stability_threshold(stability, diverges):
    """Mean-loss GD on a lazy net diverges iff lr * lambda_max(Theta) / n > 2.

    (A sum loss multiplies the effective lr by n, which is why lr = 1e-2 diverges
    with a sum at the paper's n.)"""
    n, d, m = 12, 5, 20000
    x, y = _inputs(n, d, seed=11), _targets(n, 1)
    net = twolayer.init_net(jax.random.PRNGKey(2), d, m, 1, 1.0, jnp.float64)
    gram = np.asarray(twolayer_ntk(jnp.asarray(x), jnp.asarray(x)))
    lam = eigh.eigendecompose(gram).eigvals[0]
    lr = stability * n / lam
    assert twolayer.gd_stability(lam, n, lr) == pytest.approx(stability)
    basis = jnp.asarray(twolayer.row_space_basis(x))
    problem = twolayer.gd_problem(net, basis, x, y)
    c0 = jnp.zeros((m, basis.shape[1]))
    c = jax.jit(twolayer.gd_run_fn(lr))(c0, problem, 15)
    ratio = twolayer.reduced_loss(c, *problem) / twolayer.reduced_loss(c0, *problem)
    assert (ratio > 10.0) if diverges else (ratio < 1.0)


# ---------------------------------------------------------------- gradients, attacks


@pytest.mark.parametrize("shape", [(5, 7), (1, 3)])
def test_cosine_similarity_matches_loop(shape):
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=shape), rng.normal(size=shape)
    expected = [
        ui @ vi / (np.linalg.norm(ui) * np.linalg.norm(vi))
        for ui, vi in zip(u, v, strict=True)
    ]
    np.testing.assert_allclose(twolayer.cosine_similarity(u, v), expected, rtol=1e-12)
    np.testing.assert_allclose(twolayer.cosine_similarity(u, 3 * u), 1.0)
    np.testing.assert_allclose(twolayer.cosine_similarity(u, -u), -1.0)


def test_cosine_similarity_of_zero_is_nan():
    u = np.array([[0.0, 0.0], [1.0, 0.0]])
    out = twolayer.cosine_similarity(u, np.ones((2, 2)))
    assert np.isnan(out[0]) and out[1] == pytest.approx(1 / math.sqrt(2))


def _net_input_gradient(w, w0, a, x, y, task):
    """Closed form of ∇ₓL(f_W − f_W0, y) for one input (independent reference)."""
    m = w.shape[0]
    g = (np.maximum(w @ x, 0) - np.maximum(w0 @ x, 0)) @ a / math.sqrt(m)  # (k,)
    jac = ((w.T * (w @ x > 0)) @ a - (w0.T * (w0 @ x > 0)) @ a) / math.sqrt(m)  # (d, k)
    if task == "binary":
        dl = 1 / (1 + np.exp(-g)) - (y + 1) / 2
    else:
        dl = np.exp(g) / np.exp(g).sum() - y
    return jac @ dl


@pytest.mark.parametrize(("task", "k"), [("binary", 1), ("multiclass", 4)])
@pytest.mark.parametrize("jit", [False, True])
def test_net_loss_gradient_and_own_fgsm(task, k, jit):
    n, d, m, b, eps = 10, 9, 50, 6, 0.1
    x, y = _inputs(n, d), _targets(n, k)
    x_test, y_test = _inputs(b, d, seed=3), _targets(b, k, seed=4)
    net = twolayer.init_net(jax.random.PRNGKey(4), d, m, k, 1.0, jnp.float64)
    basis = jnp.asarray(twolayer.row_space_basis(x))
    c = jax.jit(twolayer.gd_run_fn(0.1))(
        jnp.zeros((m, basis.shape[1])), twolayer.gd_problem(net, basis, x, y), 5
    )
    fn = twolayer.loss_input_gradient_fn(net, basis, task)
    fn = jax.jit(fn) if jit else fn
    grad = np.asarray(fn(c, jnp.asarray(x_test), jnp.asarray(y_test)))
    chex.assert_shape(grad, (b, d))
    w = np.asarray(twolayer.first_layer(net, basis, c))
    w0, a = np.asarray(net.w0), np.asarray(net.a)
    expected = [
        _net_input_gradient(w, w0, a, xi, yi, task)
        for xi, yi in zip(x_test, y_test, strict=True)
    ]
    np.testing.assert_allclose(grad, expected, rtol=1e-9, atol=1e-12)
    w0t = jnp.asarray(np.asarray(net.w0).T)
    fn_once = jax.jit(twolayer.outputs_and_loss_gradient, static_argnames="task")
    xt, yt = jnp.asarray(x_test), jnp.asarray(y_test)
    out, grad_once = fn_once(net, w0t, basis, c, xt, yt, task=task)
    np.testing.assert_allclose(grad_once, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(grad_once, grad, rtol=1e-10, atol=1e-14)  # autodiff
    g = twolayer.difference_fn(net, basis)
    np.testing.assert_allclose(out, g(c, xt), rtol=1e-12)
    out_t = twolayer.outputs_fn_t(w0t, net.a, basis, c, xt)
    np.testing.assert_allclose(out_t, out, rtol=1e-12)
    x_adv = fgsm_step(x_test, grad, eps)
    inside = (x_test + eps * np.sign(grad) >= 0) & (x_test + eps * np.sign(grad) <= 1)
    np.testing.assert_allclose((x_adv - x_test)[inside], eps * np.sign(grad)[inside])
    assert np.abs(x_adv - x_test).max() <= eps + 1e-12


# ---------------------------------------------------------------- NTK side


def test_ntk_reference_subset_and_restricted_jacobian():
    n_all, n, d, b, k = 14, 9, 5, 4, 3
    x, y = _inputs(n_all, d), _targets(n_all, k)
    x_test = _inputs(b, d, seed=2)
    gram = np.asarray(twolayer_ntk(jnp.asarray(x), jnp.asarray(x)))
    k_test = np.asarray(twolayer_ntk(jnp.asarray(x_test), jnp.asarray(x)))
    full_spec = eigh.eigendecompose(gram)
    ref = ntk_reference(gram, k_test, y, 0.1, n, full_spec)
    assert ref.n == n
    direct = predictor.coefficients(eigh.eigendecompose(gram[:n, :n]), y[:n], 3.0, 0.1)
    np.testing.assert_allclose(ref.coefficients(3.0), direct, rtol=1e-9, atol=1e-12)
    whole = ntk_reference(gram, k_test, y, 0.1, None, full_spec)
    np.testing.assert_allclose(whole.spectrum.eigvals, full_spec.eigvals)
    jac = jacobians.input_jacobian_fn(twolayer_ntk, "twolayer")(x_test, x)
    padded = np.zeros((n_all, k))
    padded[:n] = direct
    np.testing.assert_allclose(
        jac.train_subset(n).contract(direct),
        jac.contract(padded),
        rtol=1e-10,
        atol=1e-12,
    )


def test_fit_time_factor_recovers_the_factor():
    n, d, b = 10, 4, 5
    x, y, x_test = _inputs(n, d), _targets(n, 2), _inputs(b, d, seed=5)
    gram = np.asarray(twolayer_ntk(jnp.asarray(x), jnp.asarray(x)))
    k_test = np.asarray(twolayer_ntk(jnp.asarray(x_test), jnp.asarray(x)))
    ref = ntk_reference(gram, k_test, y, 0.1)
    factors = np.logspace(-1, 1, 41)
    f_ntk = np.stack([ref.predict(a * 2.0) for a in factors])
    alpha, err, err_one = fit_time_factor(f_ntk[30], factors, f_ntk)
    assert alpha == pytest.approx(factors[30]) and err < 1e-12 and err_one > 0


@pytest.mark.parametrize(("max_epoch", "n_eval"), [(1000, 7), (20, 30)])
def test_eval_epochs(max_epoch, n_eval):
    epochs = eval_epochs(max_epoch, n_eval, [13, 10**9])
    assert epochs[0] == 1 and epochs[-1] == max_epoch
    assert np.all(np.diff(epochs) > 0) and 13 in epochs
    assert len(epochs) <= n_eval + 1
    assert nearest_epoch(epochs, 10**9) == max_epoch


def test_transfer_epochs_add_the_image_and_alignment_epochs():
    epochs = transfer_epochs(1000, 7, [13, 2000], 200)
    np.testing.assert_array_equal(epochs, eval_epochs(1000, 7, [13, 2000, 200]))
    assert {1, 13, 200, 1000} <= set(epochs.tolist()) and 2000 not in epochs


def _tiny_problem(task="multiclass", k=3, n=8, d=12, b=5):
    x, y = _inputs(n, d), _targets(n, k)
    x_test, y_test = _inputs(b, d, seed=6), _targets(b, k, seed=7)
    gram = np.asarray(twolayer_ntk(jnp.asarray(x), jnp.asarray(x)))
    k_test = np.asarray(twolayer_ntk(jnp.asarray(x_test), jnp.asarray(x)))
    ref = ntk_reference(gram, k_test, y, 0.05)
    jac = jacobians.input_jacobian_fn(twolayer_ntk, "twolayer")(x_test, x)
    epochs = eval_epochs(10, 4, [2])
    signs = random_signs(x_test.shape, 3)
    reference = ntk_transfer_reference(
        ref, jac, twolayer_ntk, x, x_test, y_test, task, epochs, 0.1, 5,
        random_signs=signs,
    )  # fmt: skip
    return x, y, x_test, y_test, ref, epochs, signs, reference


@pytest.mark.parametrize(("task", "k"), [("binary", 1), ("multiclass", 3)])
def test_ntk_reference_robust_correctness_is_and_robust(task, k):
    x, _, x_test, y_test, ref, epochs, signs, out = _tiny_problem(task, k)
    b = x_test.shape[0]
    for key in REFERENCE_POINT_ARRAYS:
        chex.assert_shape(out[key], (len(epochs), b))
    np.testing.assert_array_equal(out["random_signs"], signs)
    for e, epoch in enumerate(epochs):
        c = ref.coefficients(epoch / ref.n)
        f = ref.predict(epoch / ref.n)
        clean = predictions_correct(f, y_test, task)
        x_rand = perturb(x_test, signs, 0.1)
        f_rand = np.asarray(twolayer_ntk(jnp.asarray(x_rand), jnp.asarray(x))) @ c
        rand = clean & predictions_correct(f_rand, y_test, task)
        np.testing.assert_array_equal(out["correct_clean"][e], clean)
        np.testing.assert_array_equal(out["correct_random"][e], rand)
        assert not (out["correct_own"][e] & ~clean).any()
        assert out["acc_random"][e] == pytest.approx(rand.mean())


def test_run_transfer_end_to_end_tiny():
    n, d, b, k, m = 8, 12, 5, 3, 64
    x, y, x_test, y_test, ref, epochs, signs, reference = _tiny_problem()
    chex.assert_shape(reference["loss_grad"], (len(epochs), b, d))
    np.testing.assert_allclose(reference["f"][-1], ref.predict(10 / n))
    net = twolayer.init_net(jax.random.PRNGKey(0), d, m, k)
    out = run_transfer(
        net, x, y, x_test, y_test, "multiclass", 0.05, reference, 0.1, 1, [2, 10]
    )
    for key in METRICS:
        chex.assert_shape(out[key], (len(epochs),))
        chex.assert_tree_all_finite(out[key])
    for key in POINT_ARRAYS:
        chex.assert_shape(out[key], (len(epochs), b))
    chex.assert_shape(out["grad_image"], (2, d))
    assert np.all(np.abs(out["cosine"]) <= 1 + 1e-9)
    np.testing.assert_array_equal(out["epoch"], epochs)
    assert np.all(np.diff(out["train_loss"]) < 0)  # GD descends at this small lr
    # independent recomputation at the last epoch: W from plain GD on W
    w = net.w0
    for _ in range(int(epochs[-1])):
        w = w - 0.05 * twolayer.mse_grad(w, net.a, x, y)
    w, w0, a = (np.asarray(v, dtype=np.float64) for v in (w, net.w0, net.a))

    def g(z):
        return (np.maximum(z @ w.T, 0) - np.maximum(z @ w0.T, 0)) @ a / math.sqrt(m)

    grad_net = np.array(
        [_net_input_gradient(w, w0, a, xi, yi, "multiclass")
         for xi, yi in zip(x_test, y_test, strict=True)]
    )  # fmt: skip
    grad_ntk = reference["loss_grad"][-1].astype(np.float64)
    other = mismatched(b)
    cos = [grad_ntk[i] @ grad_net[i] / np.linalg.norm(grad_ntk[i])
           / np.linalg.norm(grad_net[i]) for i in range(b)]  # fmt: skip
    cos_mm = [grad_ntk[i] @ grad_net[other[i]] / np.linalg.norm(grad_ntk[i])
              / np.linalg.norm(grad_net[other[i]]) for i in range(b)]  # fmt: skip
    np.testing.assert_allclose(out["cosine_per_point"][-1], cos, atol=2e-3)
    mm = out["cosine_mismatched_per_point"][-1]
    np.testing.assert_allclose(mm, cos_mm, atol=2e-3)
    labels = y_test.argmax(axis=1)
    cos_class = [
        next(
            (
                grad_ntk[i]
                @ grad_net[j]
                / np.linalg.norm(grad_ntk[i])
                / np.linalg.norm(grad_net[j])
                for j in [*range(i + 1, b), *range(i)]
                if labels[j] == labels[i]
            ),
            np.nan,
        )
        for i in range(b)
    ]  # the next point of the same class, cyclically
    np.testing.assert_allclose(
        out["cosine_same_class_per_point"][-1], cos_class, atol=2e-3
    )
    clean = predictions_correct(g(x_test), y_test, "multiclass")
    expected = {
        "correct_own": fgsm_step(x_test, grad_net, 0.1),
        "correct_ntk": fgsm_step(x_test, grad_ntk, 0.1),
        "correct_random": perturb(x_test, signs, 0.1),
    }
    np.testing.assert_array_equal(out["correct_clean"][-1], clean)
    for key, x_adv in expected.items():
        robust = clean & predictions_correct(g(x_adv), y_test, "multiclass")
        np.testing.assert_array_equal(out[key][-1], robust, err_msg=key)
        acc = "acc_" + key.split("_")[1]
        assert out[acc][-1] == pytest.approx(robust.mean())
    assert out["cosine"][-1] == pytest.approx(np.mean(cos), abs=2e-3)


def test_run_transfer_fails_on_divergence_with_the_run_named():
    """lr far above 2 n / lambda_max: the loss grows; the error names the run,
    the epoch and the config key (no output is returned)."""
    x, y, x_test, y_test, ref, epochs, _, reference = _tiny_problem()
    lam = ref.spectrum.eigvals[0]
    lr = 50 * 2 * ref.n / lam
    net = twolayer.init_net(jax.random.PRNGKey(0), x.shape[1], 64, 3, 1.0)
    with pytest.raises(DivergenceError) as err:
        run_transfer(
            net, x, y, x_test, y_test, "multiclass", lr, reference, 0.1,
            dataset="toy", at="dataset toy, width 64, seed 0",
        )  # fmt: skip
    message = str(err.value)
    assert "dataset toy, width 64, seed 0, epoch" in message
    assert "transfer.lr_overrides.toy" in message
