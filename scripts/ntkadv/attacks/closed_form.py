"""Closed-form ℓ∞ attack directions on the NTK predictor f_t (supp. App. B).

* Cross-entropy FGSM (supp. App. B.1). Binary, y ∈ {±1}: sigmoid + BCE with
  ŷ = (y + 1)/2, ∇ₓL = (σ(f) − ŷ) ∇ₓf (Eq. 5), η = ε·sign(∇ₓL) = −ε·y·sign(∇ₓf)
  (Eq. 6). Multiclass, one-hot y: softmax CE (Eq. 7), η = ε·sign(−∇f_y + Σ_r p_r ∇f_r)
  (Eq. 8). ∇ₓf comes from the input-Jacobian cache (Eq. 9), no autodiff.
* First-order perturbations (supp. App. B.2), from f(x + η) ≈ f(x) + ηᵀ z with
  z_r = ∇ₓ f_r(x) (Eqs. 10, 15, 19). On *test* points they need no labels (Eqs. 17-18):
  the reference class is the model's own prediction.
  - binary: η = −ε·sign(f(x))·sign(z) (Eq. 16 with y_i replaced by the predicted sign);
  - Max-of-ℓ1 (Eq. 20, intended reading): η = ε·sign(z_r − z_{r*}) for the r ≠ r*
    maximising ‖z_r − z_{r*}‖₁, r* = argmax_r f_r(x);
  - Sum-of-Δz (Eq. 22): η = ε·sign(Σ_{r≠r*} (z_r − z_{r*})).
  On misclassified points the label-free attack pushes away from the (wrong)
  prediction, which can make the point correct again; robust accuracy therefore
  counts a point only if it is correct both clean and attacked
  (`ntkadv.attacks.suite`).

Everything is NumPy on flattened inputs: m evaluation points, d input dim, k outputs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ntkadv.losses import loss_input_gradient
from ntkadv.typing import Task

#: Attack names used in tables and file names.
CLOSED_FORM = ("fgsm",)
FIRST_ORDER = {"binary": ("first_order",), "multiclass": ("max_l1", "sum_dz")}


def attack_names(task: Task, pgd: bool = True) -> tuple[str, ...]:
    """The attacks run for a task, in table order."""
    return CLOSED_FORM + (("pgd",) if pgd else ()) + FIRST_ORDER[task]


def perturb(x, direction, eps: float):
    """clip(x + eps·direction, 0, 1) for a direction in {−1, 0, 1}^d."""
    return np.clip(np.asarray(x) + eps * np.asarray(direction), 0.0, 1.0)


def fgsm_step(x, grad, eps: float):
    """One ℓ∞ FGSM step clip(x + eps·sign(grad), 0, 1), shapes (m, d)."""
    return perturb(x, np.sign(grad), eps)


def project(x_adv, x0, eps: float):
    """Project onto {‖x − x0‖∞ <= eps} ∩ [0, 1]^d (either numpy or jax arrays)."""
    xp = jnp if isinstance(x_adv, jax.Array) else np
    return xp.clip(xp.clip(x_adv, x0 - eps, x0 + eps), 0.0, 1.0)


def fgsm_direction(f, grad_f, y, task: Task) -> np.ndarray:
    """sign(∇ₓL) (m, d): the FGSM direction, supp. Eq. 6 (binary) / Eq. 8."""
    return np.sign(loss_input_gradient(f, grad_f, y, task))


def reference_class(f, task: Task, y=None) -> np.ndarray:
    """Reference of the first-order attacks: the prediction, or the label if given.

    Returns (m,) ±1 for binary (predicted sign, f = 0 -> +1) and (m,) int class index r*
    for multiclass.
    """
    src = np.asarray(f if y is None else y)
    if task == "binary":
        return np.where(src[:, 0] >= 0, 1.0, -1.0)
    return np.argmax(src, axis=1)


def first_order_direction(f, grad_f, method: str, y=None) -> np.ndarray:
    """Label-free first-order direction (supp. App. B.2), (m, d) in {−1, 0, 1}.

    Args:
        f: (m, k) predictions at the clean points.
        grad_f: (m, d, k) z_r = ∇ₓ f_r at the clean points (Eqs. 15, 19).
        method: "first_order" (binary, Eqs. 16-18), "max_l1" (Eq. 20) or "sum_dz"
            (Eq. 22).
        y: optional (m, k) labels; if None the reference is the prediction (test
            points need no labels, Eq. 18).
    """
    grad_f = np.asarray(grad_f)
    if method == "first_order":
        ref = reference_class(f, "binary", y)
        return -ref[:, None] * np.sign(grad_f[:, :, 0])
    r_star = reference_class(f, "multiclass", y)
    m, _, k = grad_f.shape
    z_star = grad_f[np.arange(m), :, r_star]  # (m, d)
    dz = grad_f - z_star[:, :, None]  # (m, d, k), column r* is 0
    if method == "max_l1":
        l1 = np.abs(dz).sum(axis=1)  # (m, k)
        l1[np.arange(m), r_star] = -np.inf
        r = np.argmax(l1, axis=1)
        return np.sign(dz[np.arange(m), :, r])
    if method == "sum_dz":
        return np.sign(dz.sum(axis=2))
    raise ValueError(f"unknown first-order method {method!r}")
