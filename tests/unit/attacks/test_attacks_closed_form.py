"""Tests of ntkadv.attacks.closed_form: FGSM (supp. Eqs. 5-8), first-order attacks."""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from _shared import KERNELS, TASKS, kernel_machine
from ntkadv import losses
from ntkadv.attacks import closed_form
from ntkadv.attacks.pgd import pgd


def _autodiff_loss_grad(kernel_fn, x_train, c, x, y, task):
    """Independent: jax.grad of the textbook loss (BCE on sigmoid / softmax CE)."""

    def loss_i(xi, yi):
        out = kernel_fn(xi[None], jnp.asarray(x_train))[0] @ jnp.asarray(c)
        if task == "binary":
            p, y_hat = jax.nn.sigmoid(out[0]), (yi[0] + 1) / 2
            return -(y_hat * jnp.log(p) + (1 - y_hat) * jnp.log(1 - p))
        return -jnp.log(jax.nn.softmax(out)[jnp.argmax(yi)])

    g = jax.vmap(jax.grad(loss_i))(jnp.asarray(x), jnp.asarray(y))
    return np.asarray(g).reshape(len(x), -1)


@pytest.mark.parametrize("kernel", sorted(KERNELS))
@pytest.mark.parametrize("t", [0.5, math.inf])
@pytest.mark.parametrize("k", [1, 3])
def test_fgsm_direction_equals_autodiff_sign_gradient(kernel, t, k):
    task = TASKS[k]
    kernel_fn, x_train, x_test, c, y, f, grad_f = kernel_machine(kernel, k, t)
    closed = closed_form.fgsm_direction(f, grad_f, y, task)
    auto = _autodiff_loss_grad(kernel_fn, x_train, c, x_test, y, task)
    np.testing.assert_allclose(
        losses.loss_input_gradient(f, grad_f, y, task), auto, rtol=1e-7, atol=1e-13
    )
    big = (
        np.abs(auto) > 1e-10 * np.abs(auto).max()
    )  # signs of round-off zeros are arbitrary
    np.testing.assert_array_equal(closed[big], np.sign(auto[big]))
    if task == "binary":  # supp. Eq. 6: sign((σ(f) − ŷ)∇f) = −y·sign(∇f)
        np.testing.assert_array_equal(closed, -y * np.sign(grad_f[:, :, 0]))


@pytest.mark.parametrize("eps", [0.05, 0.3])
@pytest.mark.parametrize("k", [1, 3])
def test_all_attacks_respect_ball_and_box(eps, k):
    task = TASKS[k]
    kernel_fn, x_train, x_test, c, y, f, grad_f = kernel_machine(
        "rbf", k, math.inf, seed=3
    )
    x = x_test.reshape(len(x_test), -1)
    x[:, :4] = np.array([0.0, 1.0, 0.01, 0.99])  # pixels at and near the box edges
    outs = {
        "fgsm": closed_form.fgsm_step(
            x, losses.loss_input_gradient(f, grad_f, y, task), eps
        )
    }
    for method in closed_form.FIRST_ORDER[task]:
        outs[method] = closed_form.perturb(
            x, closed_form.first_order_direction(f, grad_f, method), eps
        )
    outs["pgd"] = pgd(kernel_fn, x, x_train, c, y, task, eps, eps / 3, 5, block_size=4)
    for name, x_adv in outs.items():
        chex.assert_shape(x_adv, x.shape)
        assert np.abs(x_adv - x).max() <= eps + 1e-12, name
        assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0, name


def test_first_order_binary_is_label_free_fgsm():
    """Eqs. 16-18: −sign(f)·sign(z) = FGSM (Eq. 6) where the prediction is right."""
    _, _, _, _, y, f, grad_f = kernel_machine("rbf", 1, math.inf, seed=6, m=12)
    lf = closed_form.first_order_direction(f, grad_f, "first_order")
    fg = closed_form.fgsm_direction(f, grad_f, y, "binary")
    ok = losses.predictions_correct(f, y, "binary")
    assert ok.any() and (~ok).any()
    np.testing.assert_array_equal(lf[ok], fg[ok])
    np.testing.assert_array_equal(lf[~ok], -fg[~ok])
    with_labels = closed_form.first_order_direction(f, grad_f, "first_order", y=y)
    np.testing.assert_array_equal(with_labels, fg)


def test_multiclass_first_order_against_brute_force():
    """Max-of-ℓ1 (Eq. 20/21) and Sum-of-Δz (Eq. 22) by explicit loops over classes."""
    _, _, _, _, _, f, z = kernel_machine("rbf", 3, math.inf, seed=7, m=8)
    m, d, k = z.shape
    max_l1 = closed_form.first_order_direction(f, z, "max_l1")
    sum_dz = closed_form.first_order_direction(f, z, "sum_dz")
    rng = np.random.default_rng(0)
    for i in range(m):
        r_star = int(np.argmax(f[i]))
        # Eq. 21: maximise max_r η·(z_r − z_r*) over the ℓ∞ ball (vertices sign(·))
        best = max(
            (np.sign(z[i, :, r] - z[i, :, r_star]) @ (z[i, :, r] - z[i, :, r_star]), r)
            for r in range(k)
            if r != r_star
        )
        np.testing.assert_array_equal(
            max_l1[i], np.sign(z[i, :, best[1]] - z[i, :, r_star])
        )
        total = sum(z[i, :, r] - z[i, :, r_star] for r in range(k) if r != r_star)
        np.testing.assert_array_equal(sum_dz[i], np.sign(total))
        # no random vertex beats the Max-of-ℓ1 linear objective
        dz = [z[i, :, r] - z[i, :, r_star] for r in range(k) if r != r_star]

        def objective(eta, dz=dz):
            return max(eta @ v for v in dz)

        rand = rng.choice([-1.0, 1.0], size=(50, d))
        assert objective(max_l1[i]) >= max(objective(e) for e in rand)
