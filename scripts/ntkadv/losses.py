"""Cross-entropy losses of the kernel machines and their correctness (supp. App. B).

One definition of each quantity for every stage (attacks, features, transfer):

* binary task, targets y ∈ {±1} (k = 1): BCE of σ(f) against ŷ = (y + 1)/2
  (supp. Eq. 4), ∂L/∂f = σ(f) − ŷ (Eq. 5);
* multiclass, one-hot targets: softmax cross-entropy −f_y + logsumexp f (Eq. 7),
  ∂L/∂f = softmax(f) − y (Eq. 8).

`loss` is written in jax (it is differentiated through kernel functions and
networks); `loss_output_gradient` runs on NumPy or jax arrays (`backend`). Shapes:
outputs f (..., m, k), targets y (m, k).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from ntkadv.typing import Task

Backend = Literal["numpy", "jax"]


def _check_task(task: str) -> None:
    if task not in ("binary", "multiclass"):
        raise ValueError(f"unknown task {task!r} (use 'binary' or 'multiclass')")


def class_labels(y: np.ndarray, task: Task) -> np.ndarray:
    """Class index (b,) of targets y (b, k): ±1 -> 0/1 (binary) or the argmax
    (the ``labels`` of pointwise.h5 and of the transfer records)."""
    y = np.asarray(y)
    return (y[:, 0] > 0).astype(np.int64) if task == "binary" else y.argmax(axis=1)


def predictions_correct(f: Any, y: Any, task: Task) -> np.ndarray:
    """Whether each prediction is right: sign(f) == y (binary) or argmax (multiclass).

    Args:
        f: (..., m, k) outputs. A binary output of exactly 0 counts as the +1 class.
        y: (m, k) targets.
        task: "binary" (k = 1) or "multiclass".

    Returns:
        (..., m) bool.
    """
    _check_task(task)
    f, y = np.asarray(f), np.asarray(y)
    if task == "binary":
        return (f[..., 0] >= 0) == (y[:, 0] > 0)
    return np.argmax(f, axis=-1) == np.argmax(y, axis=-1)


def accuracy(f: Any, y: Any, task: Task) -> float:
    """Fraction of correct predictions of (m, k) outputs (see `predictions_correct`)."""
    return float(np.mean(predictions_correct(f, y, task)))


def class_accuracies(
    correct: np.ndarray, labels: np.ndarray, num_classes: int
) -> np.ndarray:
    """Per-class accuracy (..., C) from correctness (..., m); NaN for absent classes."""
    correct = np.asarray(correct, dtype=np.float64)
    out = np.full((*correct.shape[:-1], num_classes), np.nan)
    for c in range(num_classes):
        mask = np.asarray(labels) == c
        if mask.any():
            out[..., c] = correct[..., mask].mean(axis=-1)
    return out


def loss(f: Any, y: Any, task: Task) -> Any:
    """Per-example cross-entropy (m,) of jax outputs f (m, k) (supp. Eqs. 4, 7).

    Binary: softplus(f) − ŷ f, the stable form of BCE(σ(f), ŷ). Multiclass:
    −f_y + logsumexp f.
    """
    import jax
    import jax.numpy as jnp

    _check_task(task)
    if task == "binary":
        y_hat = (y[:, 0] + 1.0) / 2.0
        return jax.nn.softplus(f[:, 0]) - y_hat * f[:, 0]
    return -jnp.sum(y * f, axis=1) + jax.nn.logsumexp(f, axis=1)


def loss_output_gradient(f: Any, y: Any, task: Task, backend: Backend = "numpy") -> Any:
    """∂L/∂f (..., m, k): σ(f) − ŷ (binary, Eq. 5) or softmax(f) − y (Eq. 8).

    Args:
        f: (..., m, k) outputs.
        y: (m, k) targets.
        task: "binary" or "multiclass".
        backend: "numpy" (float64 NumPy in and out) or "jax" (jax arrays, jittable).
    """
    _check_task(task)
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        y = jnp.broadcast_to(y, jnp.shape(f))
        if task == "binary":
            return jax.nn.sigmoid(f) - (y + 1.0) / 2.0
        return jax.nn.softmax(f, axis=-1) - y
    from scipy.special import expit

    f = np.asarray(f, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if task == "binary":
        return expit(f) - 0.5 * (y + 1.0)
    e = np.exp(f - f.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True) - y


def loss_input_gradient(f: Any, grad_f: Any, y: Any, task: Task) -> np.ndarray:
    """∇ₓL (m, d) from outputs and their input gradients (supp. Eqs. 5, 8, 9).

    Args:
        f: (m, k) predictions f_t(x).
        grad_f: (m, d, k) input gradients ∇ₓ f_t(x) (Eq. 9).
        y: (m, k) targets.
        task: "binary" or "multiclass".
    """
    import jax.numpy as jnp

    g = loss_output_gradient(jnp.asarray(f), jnp.asarray(y), task, backend="jax")
    return np.einsum("mdk,mk->md", np.asarray(grad_f), np.asarray(g))
