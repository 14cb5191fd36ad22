"""Tests of ntkadv.attacks.pgd: PGD on f_t with gradients through kernel_fn."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from _shared import TASKS, kernel_machine
from ntkadv import losses
from ntkadv.attacks import closed_form
from ntkadv.attacks.pgd import loss_gradient_fn, pgd


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("block_size", [None, 4])
def test_pgd_one_full_step_is_fgsm_and_raises_loss(k, block_size):
    task = TASKS[k]
    kernel_fn, x_train, x_test, c, y, f, grad_f = kernel_machine("poly", k, 5.0, seed=4)
    x = x_test.reshape(len(x_test), -1)
    eps = 0.1
    fgsm = closed_form.fgsm_step(x, losses.loss_input_gradient(f, grad_f, y, task), eps)
    pgd1 = pgd(kernel_fn, x_test, x_train, c, y, task, eps, eps, 1, block_size)
    np.testing.assert_allclose(pgd1.reshape(x.shape), fgsm, atol=1e-12)
    pgd10 = pgd(kernel_fn, x, x_train, c, y, task, eps, eps / 4, 10, block_size)

    def total_loss(xa):
        out = kernel_fn(jnp.asarray(xa).reshape(x_test.shape), jnp.asarray(x_train)) @ c
        return float(jnp.sum(losses.loss(out, jnp.asarray(y), task)))

    assert total_loss(pgd10) > total_loss(x)


def test_pgd_init_grad_matches_autodiff_first_step():
    kernel_fn, x_train, x_test, c, y, f, grad_f = kernel_machine(
        "rbf", 3, math.inf, seed=5
    )
    g0 = losses.loss_input_gradient(f, grad_f, y, "multiclass")
    a = pgd(kernel_fn, x_test, x_train, c, y, "multiclass", 0.1, 0.03, 3)
    b = pgd(kernel_fn, x_test, x_train, c, y, "multiclass", 0.1, 0.03, 3, init_grad=g0)
    np.testing.assert_allclose(a, b, atol=1e-12)


@pytest.mark.parametrize("k", [1, 3])
def test_loss_gradient_fn_matches_the_cached_closed_form(k):
    """VJP through kernel_fn == supp. Eqs. 5/8 with the Jacobian-cache ∇f (Eq. 9)."""
    task = TASKS[k]
    kernel_fn, x_train, x_test, c, y, f, grad_f = kernel_machine("rbf", k, 2.0, seed=6)
    got = loss_gradient_fn(kernel_fn, task)(
        jnp.asarray(x_test), jnp.asarray(y), jnp.asarray(x_train), jnp.asarray(c)
    )
    assert got.shape == x_test.shape
    np.testing.assert_allclose(
        np.asarray(got).reshape(len(x_test), -1),
        losses.loss_input_gradient(f, grad_f, y, task),
        rtol=1e-9,
        atol=1e-13,
    )


def test_zero_steps_return_the_clean_points_and_project_clips():
    kernel_fn, x_train, x_test, c, y, _, _ = kernel_machine("rbf", 1, 1.0, seed=7)
    x = x_test.reshape(len(x_test), -1)
    same = pgd(kernel_fn, x, x_train, c, y, "binary", 0.1, 0.1, 0)
    np.testing.assert_array_equal(same, x)
    far = x + np.where(np.arange(x.shape[1]) % 2, 0.5, -0.5)
    expected = np.clip(np.clip(far, x - 0.1, x + 0.1), 0, 1)
    np.testing.assert_allclose(closed_form.project(far, x, 0.1), expected)
    on_device = closed_form.project(jnp.asarray(far), jnp.asarray(x), 0.1)
    assert isinstance(on_device, jax.Array)
    np.testing.assert_allclose(on_device, expected)
