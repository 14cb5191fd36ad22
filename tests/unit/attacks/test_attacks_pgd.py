"""Tests of ntkadv.attacks.pgd: PGD on f_t with gradients through kernel_fn."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from _shared import TASKS, JacobianFromAutodiff, kernel_machine, regression_data
from ntkadv import losses
from ntkadv.attacks import closed_form
from ntkadv.attacks.pgd import loss_gradient_fn, pgd, pgd_rows_fn


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


@pytest.mark.parametrize("loop", ["python", "fori", "unrolled"])
@pytest.mark.parametrize("k", [1, 3])
def test_pgd_rows_fn_equals_pgd_per_machine_and_eps(loop, k):
    """Rows of several machines and budgets in one block == `pgd` job by job, and
    the fused prediction == f_t at the returned point."""
    task = TASKS[k]
    kernel_fn, x_train, x_test, c1, y, _, _ = kernel_machine("rbf", k, 2.0, seed=8)
    c2 = 0.5 * c1[::-1].copy()  # a second machine (other coefficients)
    m = len(x_test)
    x = x_test.reshape(m, -1)
    jobs = [(c1, 0, 0.1), (c2, 1, 0.05), (c1, 0, 0.2)]
    x0 = np.concatenate([x] * len(jobs))
    yy = np.concatenate([y] * len(jobs))
    g0 = []
    for c, _, _ in jobs:
        gc = np.asarray(
            loss_gradient_fn(kernel_fn, task)(
                jnp.asarray(x_test),
                jnp.asarray(y),
                jnp.asarray(x_train),
                jnp.asarray(c),
            )
        )
        g0.append(gc.reshape(m, -1))
    cidx = np.repeat([i for _, i, _ in jobs], m)
    eps = np.repeat([e for _, _, e in jobs], m)
    c_all = np.concatenate([c1, c2], axis=1)
    attack = pgd_rows_fn(kernel_fn, task, 4, x_test.shape[1:], loop)
    xa, fa = attack(
        jnp.asarray(x0), jnp.asarray(yy), jnp.asarray(np.concatenate(g0)),
        jnp.asarray(cidx), jnp.asarray(eps), jnp.asarray(eps / 3),
        jnp.asarray(x_train), jnp.asarray(c_all),
    )  # fmt: skip
    for q, (c, _, e) in enumerate(jobs):
        ref = pgd(kernel_fn, x, x_train, c, y, task, e, e / 3, 4)
        got = np.asarray(xa)[q * m : (q + 1) * m]
        np.testing.assert_allclose(got, ref, atol=1e-12)
        f_ref = np.asarray(kernel_fn(jnp.asarray(got).reshape(x_test.shape), x_train))
        np.testing.assert_allclose(
            np.asarray(fa)[q * m : (q + 1) * m], f_ref @ c, rtol=1e-10, atol=1e-12
        )


def _linear_kernel(a, b):
    return a.reshape(a.shape[0], -1) @ b.reshape(b.shape[0], -1).T


@pytest.mark.parametrize("kernel", ["linear", "poly"])
def test_pgd_at_the_paper_step_is_not_fgsm_by_construction(kernel):
    """Finding 6's FGSM = PGD-10 is not a bug: with the notebook's step 0.01 < ε =
    8/255 the first PGD iterate moves only 0.01 from x (projection per step, no
    random start), so PGD reaches the FGSM corner x + ε·sign ∇L only by repeating
    the same sign. For a binary linear machine sign ∇ₓL = −y·sign(w) never changes,
    so ceil(ε/step) = 4 steps land exactly on FGSM; a nonlinear kernel (poly, a
    larger ε) ends PGD-10 off the FGSM corner."""
    eps, step = (8 / 255, 0.01) if kernel == "linear" else (0.3, 0.1)
    if kernel == "linear":
        x_train, x_test, y_train = regression_data(n=24, m=6, k=1, seed=3)
        kernel_fn = _linear_kernel
        c = np.linalg.lstsq(
            np.asarray(_linear_kernel(x_train, x_train)), y_train, rcond=None
        )[0]
        y = np.random.default_rng(3).choice([-1.0, 1.0], (6, 1))
        f = np.asarray(_linear_kernel(x_test, x_train)) @ c
        grad_f = JacobianFromAutodiff(kernel_fn, x_test, x_train).contract(c)
    else:
        kernel_fn, x_train, x_test, c, y, f, grad_f = kernel_machine("poly", 1, 5.0)
    x = x_test.reshape(len(x_test), -1)
    g = losses.loss_input_gradient(f, grad_f, y, "binary")
    fgsm = closed_form.fgsm_step(x, g, eps)
    one = pgd(kernel_fn, x, x_train, c, y, "binary", eps, step, 1)
    assert np.abs(one - x).max() <= step + 1e-12 < eps  # one PGD step is not FGSM
    assert not np.allclose(one, fgsm)
    pgd10 = pgd(kernel_fn, x, x_train, c, y, "binary", eps, step, 10)
    assert np.abs(pgd10 - x).max() <= eps + 1e-12
    if kernel == "linear":
        np.testing.assert_allclose(pgd10, fgsm, atol=1e-12)
        four = pgd(kernel_fn, x, x_train, c, y, "binary", eps, step, 4)
        np.testing.assert_allclose(four, fgsm, atol=1e-12)
    else:
        assert not np.allclose(pgd10, fgsm)
