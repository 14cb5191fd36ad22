"""NTK eigenfeatures and their algebra: weights, outputs, gradients (supp. App. D).

Tsilivis & Kempe (2022), Sec. 4 and supp. App. D. With Θ(X, X) = Σ_i λ_i v_i v_iᵀ
(descending λ), kernel regression decomposes into eigenfeatures (supp. Eq. 31):

    f_∞(x) = Θ(x, X) Θ(X, X)⁻¹ Y = Σ_i f⁽ⁱ⁾(x),   f⁽ⁱ⁾(x) = λ_i⁻¹ Θ(x, X) v_i v_iᵀ Y.

Each feature is a classifier (sign for binary, argmax for multiclass) scored by
usefulness ρ_i (clean accuracy, supp. Eq. 1) and robustness γ_i (accuracy under an
ℓ∞ FGSM attack computed on the feature itself, supp. Eq. 2 / App. D.3).

Rank-one structure. Every feature's output is rank one in the output dimension:
f⁽ⁱ⁾(x) = p_i(x) w_iᵀ with the scalar projection p_i(x) = Θ(x, X) v_i and the weight
row w_i = λ_i⁻¹ Yᵀ v_i ∈ R^k. Hence ∇ₓ f⁽ⁱ⁾ = (D(x)ᵀ v_i) w_iᵀ (supp. Eq. 9) and the
input gradients of ALL K features come from ONE contraction of the input-Jacobian
cache with the (n × K) matrix V_K = [v_i]. This equals the contraction with the
(n × K·k) coefficient matrix [v_i w_iᵀ]_i followed by nothing, at 1/k of the cost.
Likewise the loss gradient of feature i is s_i(x) D(x)ᵀ v_i with the scalar
s_i = Σ_r ∂L/∂f_r · w_ir, so FGSM needs no (K, m, d, k) array.

Top-r robust kernels (supp. D.3): with S_r the r most robust features (ranked on a
validation split), Θ'_r = Σ_{i∈S_r} λ_i v_i v_iᵀ and f'_r(x) = Θ(x, X) Θ'_r⁺ Y; since
Θ'_r⁺ = Σ_{i∈S_r} λ_i⁻¹ v_i v_iᵀ, f'_r = Σ_{i∈S_r} f⁽ⁱ⁾ with coefficients
c_r = V_S diag(1/λ_S) V_Sᵀ Y.

The ± trick (label-free scoring). Since ∇ₓL(f⁽ⁱ⁾) = s_i(x) ∇p_i(x), the FGSM point
of feature i is x_adv = clip(x + ε·sign(s_i(x))·sign(∇p_i(x)), 0, 1): whatever the
training labels, only the two candidates x± = clip(x ± ε sign ∇p_i(x)) (or x itself
when s_i = 0) can occur, and the labels only pick one (`attack_sides`). Moreover, at
a point the feature classifies correctly the attack always moves p_i toward zero
(binary: sign s_i = −y sign w_i = −sign p_i; multiclass: y = argmax_r p_i w_ir, so
s_i = Σ_r softmax_r (w_ir − w_iy) has the sign of −p_i), i.e. it uses the label-free
side `toward_sides(p_i(x))`. Robust accuracy counts a point only if it is correct
clean AND attacked, so p_i at the toward side alone decides it for every label set.

Everything here is float64 NumPy on in-memory arrays; kernel evaluations at
perturbed points, Jacobian contractions and PGD are passed in as callables, so the
module is independent of how the caches are stored.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ntkadv.losses import loss_output_gradient


def feature_weights(
    eigvals: np.ndarray, eigvecs: np.ndarray, y: np.ndarray, indices: Sequence[int]
) -> np.ndarray:
    """Weight rows w_i = λ_i⁻¹ Yᵀ v_i of the eigenfeatures (supp. Eq. 31).

    Args:
        eigvals: (n,) eigenvalues of Θ(X, X), descending, positive.
        eigvecs: (n, n) orthonormal eigenvectors (column i ↔ eigvals[i]).
        y: (n, k) training targets (±1 binary, one-hot multiclass).
        indices: (K,) 0-based eigen-indices.

    Returns:
        (K, k) float64; f⁽ⁱ⁾(x) = (Θ(x, X) v_i) w_i.
    """
    idx = np.asarray(indices, dtype=np.int64)
    v = np.asarray(eigvecs, dtype=np.float64)[:, idx]
    return (v.T @ np.asarray(y, dtype=np.float64)) / np.asarray(eigvals)[idx, None]


def feature_coefficients(
    eigvals: np.ndarray, eigvecs: np.ndarray, y: np.ndarray, indices: Sequence[int]
) -> np.ndarray:
    """Dual coefficients c_i = λ_i⁻¹ v_i v_iᵀ Y, so that f⁽ⁱ⁾(x) = Θ(x, X) c_i.

    Returns:
        (n, K, k) float64. Reshaped to (n, K·k) this is the coefficient matrix of
        the one-contraction gradient (see the module docstring).
    """
    idx = np.asarray(indices, dtype=np.int64)
    w = feature_weights(eigvals, eigvecs, y, idx)
    return np.asarray(eigvecs, dtype=np.float64)[:, idx, None] * w[None, :, :]


def feature_outputs(
    k_x_train: np.ndarray, eigvecs_sel: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """f⁽ⁱ⁾(x) for K features at m points.

    Args:
        k_x_train: (m, n) Θ(x, X).
        eigvecs_sel: (n, K) the selected eigenvectors [v_i].
        weights: (K, k) from `feature_weights`.

    Returns:
        (K, m, k) feature outputs.
    """
    p = np.asarray(k_x_train) @ np.asarray(eigvecs_sel)  # (m, K)
    return p.T[:, :, None] * np.asarray(weights)[:, None, :]


def feature_input_gradients(grad_p: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """∇ₓ f⁽ⁱ⁾ (K, m, d, k) from the contraction grad_p = D(x)ᵀ V_K (m, d, K).

    Materialises the full array; use it for tests and small K only.
    """
    g = np.moveaxis(np.asarray(grad_p), -1, 0)  # (K, m, d)
    return g[..., None] * np.asarray(weights)[:, None, None, :]


def feature_loss_gradients(
    f: np.ndarray, grad_p: np.ndarray, weights: np.ndarray, y: np.ndarray, task: str
) -> np.ndarray:
    """∇ₓ L(f⁽ⁱ⁾(x), y) for K features at m points without a (K, m, d, k) array.

    ∇ₓ L = Σ_r ∂L/∂f_r ∇ₓ f⁽ⁱ⁾_r = s_i(x) D(x)ᵀ v_i with s_i = Σ_r ∂L/∂f_r w_ir.

    Args:
        f: (K, m, k) feature outputs at the points.
        grad_p: (m, d, K) = D(x)ᵀ V_K, one Jacobian contraction.
        weights: (K, k) weight rows.
        y: (m, k) targets.
        task: "binary" or "multiclass".

    Returns:
        (K, m, d) loss input gradients.
    """
    s = np.einsum("imr,ir->im", loss_output_gradient(f, y, task), weights)
    return s[:, :, None] * np.moveaxis(np.asarray(grad_p), -1, 0)


def fgsm_points(x: np.ndarray, grad: np.ndarray, eps: float) -> np.ndarray:
    """One ℓ∞ step clip(x + ε·sign(∇ₓL), 0, 1) (supp. Eq. 6/8), over (..., m, d)."""
    return np.clip(np.asarray(x) + eps * np.sign(grad), 0.0, 1.0)


def attack_sides(
    p_clean: np.ndarray, weights: np.ndarray, y: np.ndarray, task: str
) -> np.ndarray:
    """sign s_i(x) of the FGSM step of each feature: x_adv = x + ε·side·sign ∇p_i(x).

    s_i = Σ_r ∂L/∂f_r · w_ir at f = p_i(x) w_i. Its sign is computed exactly, not
    from the rounded gradient (which vanishes where σ or softmax saturate):

    * binary (supp. Eq. 6): σ(f) − ŷ has the sign of −y, so sign s_i = −y sign w_i;
    * multiclass (supp. Eq. 8): s_i = Σ_r softmax_r(f) (w_ir − w_iy), whose sign is
      that of log Σ_{w_r > w_y} e^{f_r}(w_r − w_y) − log Σ_{w_r < w_y}
      e^{f_r}(w_y − w_r) (log-sum-exps, so no term underflows).

    Args:
        p_clean: (..., K, m) projections p_i(x) = Θ(x, X) v_i.
        weights: (..., K, k) weight rows w_i (leading label-set axes broadcast).
        y: (m, k) targets (±1 binary, one-hot multiclass).
        task: "binary" or "multiclass".

    Returns:
        (..., K, m) float64 in {−1, 0, +1}.
    """
    w = np.asarray(weights, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if task == "binary":
        return -np.sign(w[..., :, None, 0]) * np.sign(y[:, 0])
    if task != "multiclass":
        raise ValueError(f"unknown task {task!r} (use 'binary' or 'multiclass')")
    labels = np.argmax(y, axis=1)  # (m,)
    p = np.asarray(p_clean, dtype=np.float64)[..., None]  # (..., K, m, 1)
    f = p * w[..., :, None, :]  # (..., K, m, k)
    diff = w[..., :, None, :] - w[..., :, labels][..., None]  # (..., K, m, k)
    with np.errstate(divide="ignore"):
        log_pos = _logsumexp(np.where(diff > 0, f + np.log(np.abs(diff)), -np.inf))
        log_neg = _logsumexp(np.where(diff < 0, f + np.log(np.abs(diff)), -np.inf))
    return np.sign(np.where(log_pos == log_neg, 0.0, log_pos - log_neg))


def _logsumexp(a: np.ndarray) -> np.ndarray:
    """log Σ exp over the last axis; −inf for an all −inf row."""
    top = np.max(a, axis=-1)
    safe = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.sum(np.exp(a - safe[..., None]), axis=-1)) + safe


def toward_sides(p_clean: np.ndarray) -> np.ndarray:
    """The label-free FGSM side that moves p_i(x) toward zero: −sign p (+1 at p = 0
    is mapped to −1), float64 in {−1, +1} of the shape of `p_clean`."""
    return np.where(np.asarray(p_clean) >= 0, -1.0, 1.0)
