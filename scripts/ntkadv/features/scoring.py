"""Usefulness and robustness of eigenfeatures, and their gradient images (supp. D.2).

Each feature f⁽ⁱ⁾ (`ntkadv.features.algebra`) is a classifier (sign for binary,
argmax for multiclass) scored by usefulness ρ_i (clean accuracy, supp. Eq. 1) and
robustness γ_i (accuracy under an ℓ∞ FGSM attack computed on the feature itself,
supp. Eq. 2 / App. D.3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ntkadv.features.algebra import (
    feature_loss_gradients,
    feature_outputs,
    feature_weights,
    fgsm_points,
)
from ntkadv.losses import class_accuracies, predictions_correct
from ntkadv.typing import KernelRowsFn


@dataclass(frozen=True)
class FeatureScores:
    """Usefulness and robustness of K eigenfeatures on m evaluation points.

    Attributes:
        indices: (K,) eigen-indices (0-based, descending eigenvalue).
        usefulness: (K,) clean accuracy ρ_i.
        robustness: (K,) FGSM accuracy γ_i (attack on the feature itself).
        usefulness_per_class: (K, C).
        robustness_per_class: (K, C).
        correct_clean: (K, m) bool.
        correct_adv: (K, m) bool.
    """

    indices: np.ndarray
    usefulness: np.ndarray
    robustness: np.ndarray
    usefulness_per_class: np.ndarray
    robustness_per_class: np.ndarray
    correct_clean: np.ndarray
    correct_adv: np.ndarray


def score_features(
    *,
    eigvals: np.ndarray,
    eigvecs: np.ndarray,
    y_train: np.ndarray,
    indices: Sequence[int],
    k_eval_train: np.ndarray,
    grad_p: np.ndarray,
    x_eval: np.ndarray,
    y_eval: np.ndarray,
    labels_eval: np.ndarray,
    kernel_rows_fn: KernelRowsFn,
    eps: float,
    task: str,
    num_classes: int,
    chunk: int = 25,
) -> FeatureScores:
    """Usefulness and FGSM robustness of eigenfeatures (Sec. 4, supp. D.2).

    For each feature i: x_adv = clip(x + ε sign ∇ₓL(f⁽ⁱ⁾(x), y), 0, 1) with the
    gradient at the clean point from the Jacobian contraction, and robustness is
    the accuracy of f⁽ⁱ⁾(x_adv) = λ_i⁻¹ Θ(x_adv, X) v_i v_iᵀ Y, where Θ(x_adv, X) is
    the exact kernel at the perturbed point (`kernel_rows_fn`).

    Args:
        eigvals, eigvecs: spectrum of Θ(X, X), (n,), (n, n).
        y_train: (n, k) training targets.
        indices: (K,) eigen-indices to score.
        k_eval_train: (m, n) Θ(x, X) at the clean evaluation points.
        grad_p: (m, d, K) = D(x)ᵀ V[:, indices] (one contraction).
        x_eval: (m, d) flattened clean evaluation inputs in [0, 1].
        y_eval: (m, k) targets; labels_eval: (m,) integer labels.
        kernel_rows_fn: x (p, d) -> Θ(x, X) (p, n).
        eps: ℓ∞ budget.
        task: "binary" or "multiclass"; num_classes: C.
        chunk: features whose perturbed kernel rows are evaluated per call
            (one call holds chunk·m rows).

    Returns:
        `FeatureScores`.
    """
    idx = np.asarray(indices, dtype=np.int64)
    v = np.asarray(eigvecs, dtype=np.float64)[:, idx]
    w = feature_weights(eigvals, eigvecs, y_train, idx)
    f_clean = feature_outputs(k_eval_train, v, w)  # (K, m, k)
    correct_clean = predictions_correct(f_clean, y_eval, task)
    m, d = x_eval.shape
    correct_adv = np.zeros_like(correct_clean)
    for lo in range(0, idx.size, chunk):
        sl = slice(lo, min(lo + chunk, idx.size))
        grad = feature_loss_gradients(
            f_clean[sl], grad_p[:, :, sl], w[sl], y_eval, task
        )  # (c, m, d)
        x_adv = fgsm_points(x_eval[None], grad, eps)
        rows = np.asarray(kernel_rows_fn(x_adv.reshape(-1, d))).reshape(
            -1, m, v.shape[0]
        )
        f_adv = np.einsum("imn,ni,ir->imr", rows, v[:, sl], w[sl])
        correct_adv[sl] = predictions_correct(f_adv, y_eval, task)
    return FeatureScores(
        indices=idx,
        usefulness=correct_clean.mean(axis=1),
        robustness=correct_adv.mean(axis=1),
        usefulness_per_class=class_accuracies(correct_clean, labels_eval, num_classes),
        robustness_per_class=class_accuracies(correct_adv, labels_eval, num_classes),
        correct_clean=correct_clean,
        correct_adv=correct_adv,
    )


def scale_feature_indices(
    indices: Sequence[int], n: int, n_ref: int = 2000, tail: int = 20
) -> np.ndarray:
    """Map eigen-indices chosen for n_ref training points to n training points.

    The notebook visualises indices (0-5, 10, 25, 1500, 1987, 1988, 1998) at
    n_ref = 2000. At other n: an index within `tail` of the end keeps its distance to
    the end (1998 -> n − 2), an index below n_ref/2 keeps its value, any other keeps
    its relative position (1500 -> round(0.75 n)). Results are clipped to [0, n − 1]
    and de-duplicated in order; at n = n_ref this is the identity.

    Returns:
        (K',) int64, sorted ascending.
    """
    out = []
    for i in indices:
        if n == n_ref:
            j = int(i)
        elif n_ref - 1 - i < tail:
            j = n - (n_ref - i)
        elif i < n_ref // 2:
            j = int(i)
        else:
            j = round(i * n / n_ref)
        out.append(min(max(j, 0), n - 1))
    return np.unique(np.asarray(out, dtype=np.int64))


def gradient_images(grads: np.ndarray) -> np.ndarray:
    """Per-image min-max normalisation to [0, 1] (the notebook's display); (K, d)."""
    g = np.asarray(grads, dtype=np.float64)
    lo = g.min(axis=-1, keepdims=True)
    span = g.max(axis=-1, keepdims=True) - lo
    return (g - lo) / np.where(span > 0, span, 1.0)


def gradient_image_stack(
    *,
    eigvals: np.ndarray,
    eigvecs: np.ndarray,
    y_train: np.ndarray,
    indices: Sequence[int],
    k_point_train: np.ndarray,
    grad_p_point: np.ndarray,
    y_point: np.ndarray,
    task: str,
) -> np.ndarray:
    """∇ₓL(f⁽ⁱ⁾(x), y) at one point for several features (main Fig. 3 [INFER]).

    Args:
        k_point_train: (1, n) Θ(x, X); grad_p_point: (1, d, K) = D(x)ᵀ V[:, indices];
        y_point: (1, k).

    Returns:
        (K, d) raw loss gradients (normalise with `gradient_images` for display).
    """
    idx = np.asarray(indices, dtype=np.int64)
    w = feature_weights(eigvals, eigvecs, y_train, idx)
    f = feature_outputs(k_point_train, np.asarray(eigvecs)[:, idx], w)
    return feature_loss_gradients(f, grad_p_point, w, y_point, task)[:, 0, :]
