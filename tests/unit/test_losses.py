"""Tests of ntkadv.losses: cross-entropies (supp. Eqs. 4-8) and correctness."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkadv import losses

TASKS = {1: "binary", 3: "multiclass", 4: "multiclass"}


def _targets(rng, m, k):
    if k == 1:
        return rng.choice([-1.0, 1.0], (m, 1))
    return np.eye(k)[rng.integers(0, k, m)]


@pytest.mark.parametrize("k", [1, 4])
def test_accuracy_against_loop(k):
    rng = np.random.default_rng(8)
    f = rng.normal(size=(30, k))
    if k == 1:
        y = rng.choice([-1.0, 1.0], (30, 1))
        ref = [float(np.sign(fi[0]) == yi[0]) for fi, yi in zip(f, y, strict=True)]
    else:
        y = np.eye(k)[rng.integers(0, k, 30)]
        ref = [
            float(list(fi).index(max(fi)) == list(yi).index(1.0))
            for fi, yi in zip(f, y, strict=True)
        ]
    assert losses.accuracy(f, y, TASKS.get(k, "multiclass")) == pytest.approx(
        np.mean(ref)
    )


@pytest.mark.parametrize("k", [1, 3])
def test_loss_output_gradient_numpy_and_jax_backends_agree(k):
    """The NumPy backend (batched, float64) == the jittable jax backend to 1e-15."""
    task = TASKS[k]
    rng = np.random.default_rng(4)
    f = 3.0 * rng.normal(size=(3, 6, k))
    y = _targets(rng, 6, k)
    got = losses.loss_output_gradient(f, y, task)
    chex.assert_shape(got, (3, 6, k))
    assert got.dtype == np.float64
    jitted = jax.jit(losses.loss_output_gradient, static_argnums=(2, 3))
    for j in range(3):
        ref = jitted(jnp.asarray(f[j]), jnp.asarray(y), task, "jax")
        np.testing.assert_allclose(got[j], np.asarray(ref), rtol=0, atol=1e-15)
    # batched jax outputs with explicitly broadcast targets (no rank promotion)
    y_b = jnp.broadcast_to(jnp.asarray(y), f.shape)
    ref = losses.loss_output_gradient(jnp.asarray(f), y_b, task, backend="jax")
    np.testing.assert_allclose(got, np.asarray(ref), rtol=0, atol=1e-15)
    # and both are the derivative of `loss`
    auto = jax.vmap(jax.grad(lambda fj: jnp.sum(losses.loss(fj, jnp.asarray(y), task))))
    np.testing.assert_allclose(got, np.asarray(auto(jnp.asarray(f))), atol=1e-14)


@pytest.mark.parametrize("k", [1, 3])
def test_loss_is_the_textbook_cross_entropy(k):
    task = TASKS[k]
    rng = np.random.default_rng(5)
    f, y = rng.normal(size=(7, k)), _targets(rng, 7, k)
    got = np.asarray(losses.loss(jnp.asarray(f), jnp.asarray(y), task))
    chex.assert_shape(got, (7,))
    if task == "binary":
        p, y_hat = 1 / (1 + np.exp(-f[:, 0])), (y[:, 0] + 1) / 2
        ref = -(y_hat * np.log(p) + (1 - y_hat) * np.log(1 - p))
    else:
        ref = -np.log(np.exp(f) / np.exp(f).sum(1, keepdims=True))[y.astype(bool)]
    np.testing.assert_allclose(got, ref, rtol=1e-12)


@pytest.mark.parametrize("k", [1, 3])
def test_predictions_correct_is_batched(k):
    """(K, m, k) outputs give (K, m), each slice the (m, k) answer and the loop's."""
    task = TASKS[k]
    rng = np.random.default_rng(6)
    f, y = rng.normal(size=(4, 9, k)), _targets(rng, 9, k)
    if k == 1:
        f[0, 0, 0] = 0.0  # a binary output of exactly 0 counts as the +1 class
    correct = losses.predictions_correct(f, y, task)
    chex.assert_shape(correct, (4, 9))
    assert correct.dtype == bool
    for j in range(4):
        np.testing.assert_array_equal(
            correct[j], losses.predictions_correct(f[j], y, task)
        )
        for i in range(9):
            if k == 1:
                ref = (1.0 if f[j, i, 0] >= 0 else -1.0) == y[i, 0]
            else:
                ref = int(np.argmax(f[j, i])) == int(np.argmax(y[i]))
            assert correct[j, i] == ref
    if k == 1:
        assert correct[0, 0] == (y[0, 0] == 1.0)


def test_class_accuracies():
    correct = np.array([[1, 0, 1, 1], [0, 0, 1, 0]], dtype=bool)
    acc = losses.class_accuracies(correct, np.array([0, 0, 1, 2]), 4)
    np.testing.assert_allclose(acc[:, :3], [[0.5, 1, 1], [0, 1, 0]])
    assert np.isnan(acc[:, 3]).all()


def test_unknown_task_raises():
    f, y = np.zeros((2, 1)), np.ones((2, 1))
    for fn in (losses.predictions_correct, losses.loss_output_gradient, losses.loss):
        with pytest.raises(ValueError, match="unknown task"):
            fn(f, y, "regression")
