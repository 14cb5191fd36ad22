"""NTK eigenfeatures: usefulness, robustness, gradients, top-r robust kernels.

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

Everything here is float64 NumPy on in-memory arrays; kernel evaluations at
perturbed points, Jacobian contractions and PGD are passed in as callables, so the
module is independent of how the caches are stored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

#: x_flat (p, d) -> Θ(x, X_train) (p, n).
KernelRowsFn = Callable[[np.ndarray], np.ndarray]
#: c (n, K) -> D(x)ᵀ c (m, d, K) at the cached evaluation points.
ContractFn = Callable[[np.ndarray], np.ndarray]


# ------------------------------------------------------------------ caches


def contract_fn(jacobian: Any, i0: int, i1: int) -> ContractFn:
    """Contraction c -> D(x)ᵀ c restricted to the cached evaluation points i0:i1.

    Args:
        jacobian: an `ntkadv.jacobians.InputJacobian` (factored or dense form).
        i0, i1: row range of the cached evaluation (test) points.

    Returns:
        c (n, J) -> (i1 − i0, d, J). The factored form is sliced; the dense form
        streams only the rows < i1 from its file and drops the rows < i0.
    """
    if jacobian.form == "factored":
        sub = dataclasses.replace(
            jacobian,
            x_eval=jacobian.x_eval[i0:i1],
            a=jacobian.a[i0:i1],
            b=jacobian.b[i0:i1],
        )
        return sub.contract
    dense = None if jacobian.dense is None else jacobian.dense[:i1]
    prefix = dataclasses.replace(jacobian, x_eval=jacobian.x_eval[:i1], dense=dense)

    def contract(c: np.ndarray) -> np.ndarray:
        return prefix.contract(c)[i0:]

    return contract


# ------------------------------------------------------------------ feature algebra


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


# ------------------------------------------------------------------ losses, accuracy


def loss_output_gradient(f: np.ndarray, y: np.ndarray, task: str) -> np.ndarray:
    """∂L/∂f of the cross-entropy losses of supp. Eqs. 4 and 7.

    Args:
        f: (..., m, k) outputs.
        y: (m, k) targets: ±1 with k = 1 (binary) or one-hot (multiclass).
        task: "binary" or "multiclass".

    Returns:
        (..., m, k): σ(f) − ŷ with ŷ = (y + 1)/2 (supp. Eq. 5), or softmax(f) − y
        (gradient of −f_y + logsumexp f, supp. Eq. 7-8).
    """
    f = np.asarray(f, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if task == "binary":
        return stats.logistic.cdf(f) - 0.5 * (y + 1.0)
    if task == "multiclass":
        z = f - f.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True) - y
    raise ValueError(f"unknown task {task!r}")


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


def predictions_correct(f: np.ndarray, y: np.ndarray, task: str) -> np.ndarray:
    """Whether each prediction is right: sign (binary) or argmax (multiclass).

    Args:
        f: (..., m, k) outputs.
        y: (m, k) targets.

    Returns:
        (..., m) bool. A binary output of exactly 0 counts as the +1 class (as in
        `ntkadv.attacks.predictions_correct`, of which this is the batched form).
    """
    f = np.asarray(f)
    y = np.asarray(y)
    if task == "binary":
        return (f[..., 0] >= 0) == (y[:, 0] > 0)
    if task == "multiclass":
        return np.argmax(f, axis=-1) == np.argmax(y, axis=-1)
    raise ValueError(f"unknown task {task!r}")


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


def fgsm_points(x: np.ndarray, grad: np.ndarray, eps: float) -> np.ndarray:
    """One ℓ∞ step clip(x + ε·sign(∇ₓL), 0, 1) (supp. Eq. 6/8), over (..., m, d)."""
    return np.clip(np.asarray(x) + eps * np.sign(grad), 0.0, 1.0)


# ------------------------------------------------------------------ scoring


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


# ------------------------------------------------------------------ Proposition 1


def proposition1_decomposition(
    f_full: np.ndarray, f_feat: np.ndarray, loss_grads_feat: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Σ_i α_i ∇ₓL(f⁽ⁱ⁾), α_i = (σ(f_∞) − ŷ)/(σ(f⁽ⁱ⁾) − ŷ) (supp. Prop. 1, Eq. 32-33).

    Binary task only (α is a scalar ratio of sigmoid residuals).

    Args:
        f_full: (m, 1) f_∞ at the points.
        f_feat: (N, m, 1) all N feature outputs.
        loss_grads_feat: (N, m, d) ∇ₓL(f⁽ⁱ⁾(x), y).
        y: (m, 1) ±1 labels.

    Returns:
        alpha (N, m) and the decomposition (m, d).
    """
    r_full = loss_output_gradient(f_full, y, "binary")[:, 0]  # (m,)
    r_feat = loss_output_gradient(f_feat, y, "binary")[..., 0]  # (N, m)
    alpha = r_full[None, :] / r_feat
    return alpha, np.einsum("im,imd->md", alpha, loss_grads_feat)


def proposition1_check(
    *,
    gram: np.ndarray,
    eigvals: np.ndarray,
    eigvecs: np.ndarray,
    y_train: np.ndarray,
    k_eval_train: np.ndarray,
    y_eval: np.ndarray,
    contract: ContractFn,
) -> dict[str, float]:
    """Prop. 1 and Eq. 31 on real data (binary task), against a linear solve.

    Reference: ∇ₓL(f_∞) = (σ(f_∞) − ŷ) D(x)ᵀ Θ⁻¹Y with Θ⁻¹Y from `np.linalg.solve`.
    Decomposition: Σ_i α_i ∇ₓL(f⁽ⁱ⁾) over ALL n features, with ∇ₓL(f⁽ⁱ⁾) =
    s_i D(x)ᵀ v_i; by linearity of D(x)ᵀ it is evaluated as D(x)ᵀ u(x) with
    u(x) = Σ_i α_i(x) s_i(x) v_i, i.e. one contraction with an (n × m) matrix whose
    diagonal blocks are kept.

    Args:
        gram: (n, n) Θ(X, X); eigvals, eigvecs: its spectrum.
        y_train: (n, 1) ±1; k_eval_train: (m, n); y_eval: (m, 1).
        contract: c (n, J) -> (m, d, J) at the same m points.

    Returns:
        {"sum_max_abs_err", "sum_rel_err" (Σ f⁽ⁱ⁾ vs f_∞), "grad_max_abs_err",
        "grad_rel_err" (Prop. 1), "alpha_max_abs"}.
    """
    n = eigvals.shape[0]
    c_solve = np.linalg.solve(np.asarray(gram, dtype=np.float64), y_train)
    f_full = k_eval_train @ c_solve  # (m, 1)
    w = feature_weights(eigvals, eigvecs, y_train, np.arange(n))  # (n, 1)
    f_feat = feature_outputs(k_eval_train, eigvecs, w)  # (n, m, 1)
    sum_err = float(np.abs(f_feat.sum(axis=0) - f_full).max())
    r_full = loss_output_gradient(f_full, y_eval, "binary")  # (m, 1)
    r_feat = loss_output_gradient(f_feat, y_eval, "binary")[..., 0]  # (n, m)
    alpha = r_full[:, 0][None, :] / r_feat  # (n, m), supp. Eq. 33
    u = eigvecs @ (alpha * r_feat * w)  # (n, m): Σ_i α_i s_i v_i per point
    m = f_full.shape[0]
    decomposed = contract(u)[np.arange(m), :, np.arange(m)]  # (m, d)
    ref = r_full * contract(c_solve)[:, :, 0]
    grad_err = float(np.abs(decomposed - ref).max())
    return {
        "sum_max_abs_err": sum_err,
        "sum_rel_err": sum_err / float(np.abs(f_full).max()),
        "grad_max_abs_err": grad_err,
        "grad_rel_err": grad_err / float(np.abs(ref).max()),
        "alpha_max_abs": float(np.abs(alpha).max()),
    }


# ------------------------------------------------------------------ top-r kernels


def robustness_ranking(robustness: np.ndarray, indices: Sequence[int]) -> np.ndarray:
    """Eigen-indices sorted by robustness, most robust first (ties: smaller index)."""
    idx = np.asarray(indices, dtype=np.int64)
    order = np.lexsort((idx, -np.asarray(robustness, dtype=np.float64)))
    return idx[order]


def rank_by_validation_robustness(
    *,
    eigvals: np.ndarray,
    eigvecs: np.ndarray,
    y_train: np.ndarray,
    candidates: Sequence[int],
    k_val_train: np.ndarray,
    contract: ContractFn,
    x_val: np.ndarray,
    y_val: np.ndarray,
    labels_val: np.ndarray,
    kernel_rows_fn: KernelRowsFn,
    eps: float,
    task: str,
    num_classes: int,
    group: int = 200,
    chunk: int = 25,
) -> tuple[np.ndarray, np.ndarray]:
    """Rank eigenfeatures by FGSM robustness on a validation split (supp. D.3).

    The candidates are scored in groups of `group` features (one Jacobian
    contraction per group, which bounds the (m, d, group) gradient array).

    Returns:
        ranked eigen-indices (most robust first) and the candidates' validation
        robustness (in candidate order).
    """
    cand = np.asarray(candidates, dtype=np.int64)
    rob = np.empty(cand.size)
    for lo in range(0, cand.size, group):
        sel = cand[lo : lo + group]
        s = score_features(
            eigvals=eigvals,
            eigvecs=eigvecs,
            y_train=y_train,
            indices=sel,
            k_eval_train=k_val_train,
            grad_p=contract(np.asarray(eigvecs)[:, sel]),
            x_eval=x_val,
            y_eval=y_val,
            labels_eval=labels_val,
            kernel_rows_fn=kernel_rows_fn,
            eps=eps,
            task=task,
            num_classes=num_classes,
            chunk=chunk,
        )
        rob[lo : lo + sel.size] = s.robustness
    return robustness_ranking(rob, cand), rob


def topr_gram(eigvals: np.ndarray, eigvecs: np.ndarray, selected: Sequence[int]):
    """Θ'_r = Σ_{i∈S} λ_i v_i v_iᵀ (n, n), original eigenvalues kept (supp. D.3)."""
    s = np.asarray(selected, dtype=np.int64)
    v = np.asarray(eigvecs)[:, s]
    return (v * np.asarray(eigvals)[s]) @ v.T


def topr_coefficients(
    eigvals: np.ndarray,
    eigvecs: np.ndarray,
    y: np.ndarray,
    ranked: Sequence[int],
    rs: Sequence[int],
) -> np.ndarray:
    """c_r = Θ'_r⁺ Y = Σ_{i∈S_r} λ_i⁻¹ v_i v_iᵀ Y for each r in `rs` (supp. D.3).

    Args:
        eigvals, eigvecs: spectrum of Θ(X, X).
        y: (n, k) targets.
        ranked: eigen-indices, most robust first.
        rs: (R,) numbers of kept features, each in [1, len(ranked)].

    Returns:
        (R, n, k) coefficients; f'_r(x) = Θ(x, X) c_r.
    """
    ranked = np.asarray(ranked, dtype=np.int64)
    w = feature_weights(eigvals, eigvecs, y, ranked)  # (N, k)
    v = np.asarray(eigvecs, dtype=np.float64)[:, ranked]
    return np.stack([v[:, :r] @ w[:r] for r in rs])


def topr_grid(n_max: int, grid: Sequence[int]) -> np.ndarray:
    """The configured r values that exist (≤ n_max), plus n_max itself, ascending."""
    rs = [int(r) for r in grid if 1 <= int(r) <= n_max] + [n_max]
    return np.unique(np.asarray(rs, dtype=np.int64))


def evaluate_topr(
    *,
    coefs: np.ndarray,
    c_full: np.ndarray,
    k_eval_train: np.ndarray,
    x_eval: np.ndarray,
    y_eval: np.ndarray,
    contract: ContractFn,
    kernel_rows_fn: KernelRowsFn,
    pgd_fn: Callable[[np.ndarray], np.ndarray],
    eps: float,
    task: str,
) -> dict[str, np.ndarray]:
    """Clean, FGSM and PGD accuracy of the top-r kernel machines f'_r (supp. D.3).

    Attacks: "transfer" ones are computed on the full kernel machine f_∞ (c_full),
    "own" ones on f'_r itself; all are evaluated on f'_r.

    Args:
        coefs: (R, n, k) top-r coefficients.
        c_full: (n, k) coefficients of f_∞.
        k_eval_train: (m, n) Θ(x, X) at the clean evaluation points.
        x_eval: (m, d) flattened clean inputs; y_eval: (m, k).
        contract: c (n, J) -> D(x)ᵀ c (m, d, J) at the evaluation points.
        kernel_rows_fn: x (p, d) -> Θ(x, X) (p, n).
        pgd_fn: c (n, k) -> x_adv (m, d), PGD against Θ(·, X) c.
        eps: ℓ∞ budget; task: "binary" | "multiclass".

    Returns:
        Dict of (R,) accuracies: clean, fgsm_transfer, pgd_transfer, fgsm_own,
        pgd_own; and the full kernel's own clean / fgsm / pgd accuracy (scalars).
    """
    n_r, n, k = coefs.shape
    m, d = x_eval.shape

    def acc(f):
        return predictions_correct(f, y_eval, task).mean(axis=-1)

    def fgsm(f, grad_f):  # f (J, m, k), grad_f (m, d, J, k) -> (J, m, d)
        s = loss_output_gradient(f, y_eval, task)  # (J, m, k)
        grad = np.einsum("jmr,mdjr->jmd", s, grad_f)
        return fgsm_points(x_eval[None], grad, eps)

    f_clean = np.einsum("mn,jnr->jmr", k_eval_train, coefs)
    # transfer: attacks from the full kernel, evaluated on every f'_r
    f_full = k_eval_train @ c_full
    x_fgsm_full = fgsm(f_full[None], contract(c_full)[:, :, None, :])[0]
    x_pgd_full = np.asarray(pgd_fn(c_full)).reshape(m, d)
    k_fgsm_full = kernel_rows_fn(x_fgsm_full)
    k_pgd_full = kernel_rows_fn(x_pgd_full)
    # own attacks: one contraction with all R coefficient sets
    grad_own = contract(coefs.transpose(1, 0, 2).reshape(n, n_r * k)).reshape(
        m, d, n_r, k
    )
    x_fgsm_own = fgsm(f_clean, grad_own)  # (R, m, d)
    k_fgsm_own = np.asarray(kernel_rows_fn(x_fgsm_own.reshape(-1, d))).reshape(
        n_r, m, n
    )
    pgd_own = []
    for j in range(n_r):
        x_adv = np.asarray(pgd_fn(coefs[j])).reshape(m, d)
        pgd_own.append(acc(kernel_rows_fn(x_adv) @ coefs[j]))
    return {
        "clean": acc(f_clean),
        "fgsm_transfer": acc(np.einsum("mn,jnr->jmr", k_fgsm_full, coefs)),
        "pgd_transfer": acc(np.einsum("mn,jnr->jmr", k_pgd_full, coefs)),
        "fgsm_own": acc(np.einsum("jmn,jnr->jmr", k_fgsm_own, coefs)),
        "pgd_own": np.asarray(pgd_own),
        "full_clean": acc(f_full),
        "full_fgsm": acc(k_fgsm_full @ c_full),
        "full_pgd": acc(k_pgd_full @ c_full),
    }


# ------------------------------------------------------------------ consistency


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (NaN if either vector is constant)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(stats.spearmanr(a, b).statistic)


def subspace_cosines(va: np.ndarray, vb: np.ndarray) -> np.ndarray:
    """Cosines of the principal angles between span(va) and span(vb), descending.

    Args:
        va, vb: (n, r) matrices with orthonormal columns.

    Returns:
        (r,) singular values of vaᵀ vb, in [0, 1].
    """
    return np.clip(
        np.linalg.svd(np.asarray(va).T @ np.asarray(vb), compute_uv=False), 0, 1
    )


def subspace_overlap(va: np.ndarray, vb: np.ndarray) -> float:
    """Mean squared principal-angle cosine ‖vaᵀ vb‖_F² / r in [0, 1] (1: same space)."""
    return float(np.mean(subspace_cosines(va, vb) ** 2))


def consistency_table(
    correct_adv: dict[str, np.ndarray],
    correct_clean: dict[str, np.ndarray],
    top_eigvecs: dict[str, np.ndarray],
) -> Any:
    """Pairwise cross-architecture consistency of eigenfeatures (finding 3).

    Args:
        correct_adv, correct_clean: arch -> (K, m_arch) FGSM / clean correctness of
            the first K features on the first m_arch evaluation points (a common
            prefix of the test subset).
        top_eigvecs: arch -> (n, r) top-r eigenvectors of Θ(X, X) (same X).

    Returns:
        pandas DataFrame, one row per ordered pair (arch_a, arch_b) including the
        diagonal: n_eval (points both kernels were scored on; the scores of the pair
        are recomputed on them), spearman_robustness, spearman_usefulness,
        subspace_overlap (mean squared principal-angle cosine of the top-r spaces),
        min_cosine (cosine of the largest principal angle).
    """
    import pandas as pd

    rows = []
    for a in correct_adv:
        for b in correct_adv:
            k = min(correct_adv[a].shape[0], correct_adv[b].shape[0])
            m = min(correct_adv[a].shape[1], correct_adv[b].shape[1])
            rob = {x: correct_adv[x][:k, :m].mean(axis=1) for x in (a, b)}
            use = {x: correct_clean[x][:k, :m].mean(axis=1) for x in (a, b)}
            cos = subspace_cosines(top_eigvecs[a], top_eigvecs[b])
            rows.append(
                {
                    "arch_a": a,
                    "arch_b": b,
                    "n_eval": m,
                    "spearman_robustness": spearman(rob[a], rob[b]),
                    "spearman_usefulness": spearman(use[a], use[b]),
                    "subspace_overlap": float(np.mean(cos**2)),
                    "min_cosine": float(cos.min()),
                }
            )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ claims helpers


def useful_nonrobust_count(
    usefulness: np.ndarray, robustness: np.ndarray, chance: float, gamma_max: float
) -> int:
    """Features with ρ > chance and γ ≤ gamma_max (the "useful, non-robust" box)."""
    u, r = np.asarray(usefulness), np.asarray(robustness)
    return int(np.sum((u > chance) & (r <= gamma_max)))


# ------------------------------------------------------------------ tables


def scores_frame(scores: FeatureScores, eigvals: np.ndarray, classes: Sequence[Any]):
    """One row per scored feature: eigen-index, λ, usefulness, robustness, per class.

    Returns:
        pandas DataFrame with columns eigen_index, eigval, usefulness, robustness,
        usefulness_class_<c>, robustness_class_<c> for every class label c.
    """
    import pandas as pd

    cols: dict[str, Any] = {
        "eigen_index": scores.indices,
        "eigval": np.asarray(eigvals)[scores.indices],
        "usefulness": scores.usefulness,
        "robustness": scores.robustness,
    }
    for j, c in enumerate(classes):
        cols[f"usefulness_class_{c}"] = scores.usefulness_per_class[:, j]
    for j, c in enumerate(classes):
        cols[f"robustness_class_{c}"] = scores.robustness_per_class[:, j]
    return pd.DataFrame(cols)


# ------------------------------------------------------------------ claims rows


def _status(ok: Sequence[bool]) -> str:
    """pass if every case holds, fail if at most half do, inconclusive otherwise."""
    ok = [bool(o) for o in ok]
    if not ok:
        return "inconclusive"
    if all(ok):
        return "pass"
    return "fail" if sum(ok) <= len(ok) / 2 else "inconclusive"


def _row(finding, description, claim, measured, criterion, status) -> dict[str, Any]:
    return {
        "finding": finding,
        "description": description,
        "paper_claim": claim,
        "measured": measured,
        "criterion": criterion,
        "status": status,
    }


def spectrum_claims(
    dataset: str,
    scores: dict[str, dict[str, np.ndarray]],
    chance: float,
    nonrobust_max: float,
) -> list[dict[str, Any]]:
    """Rows for findings 1 (robust features at the top) and 2 (useful non-robust).

    Args:
        dataset: name used in the text.
        scores: arch -> {"index", "usefulness", "robustness"} of the first K features.
        chance: usefulness threshold (1 / number of classes).
        nonrobust_max: γ at or below which a feature counts as non-robust.
    """
    rho, top, tail, count = {}, {}, {}, {}
    for arch, s in scores.items():
        idx, rob = np.asarray(s["index"]), np.asarray(s["robustness"])
        rho[arch] = spearman(idx, rob)
        top[arch] = float(rob[idx < 10].mean())
        sel = (idx >= 50) & (idx < 100)
        tail[arch] = float(rob[sel].mean()) if sel.any() else float("nan")
        count[arch] = useful_nonrobust_count(
            s["usefulness"], rob, chance, nonrobust_max
        )
    per_arch = "; ".join(
        f"{a}: rho={rho[a]:.2f}, top10={top[a]:.2f}, 50-99={tail[a]:.2f}" for a in rho
    )
    vals = np.array(list(rho.values()))
    ok1 = [rho[a] < 0 and top[a] > tail[a] for a in rho]
    status1 = "inconclusive" if np.isnan(list(tail.values())).any() else _status(ok1)
    rows = [
        _row(
            1,
            f"{dataset}: robustness vs eigen-index of the first K features",
            "Robust features correspond to the largest eigenvalues; gamma_i -> 0 "
            "beyond a few dozen features (abstract, supp. D.2)",
            f"Spearman(index, robustness) median {np.nanmedian(vals):.2f} "
            f"[{np.nanmin(vals):.2f}, {np.nanmax(vals):.2f}] over {vals.size} "
            f"architectures; mean robustness top-10 "
            f"{np.mean(list(top.values())):.2f} vs features 50-99 "
            f"{np.nanmean(list(tail.values())):.2f} ({per_arch})",
            "every architecture: Spearman < 0 and mean robustness of features 0-9 > "
            "mean of features 50-99",
            status1,
        ),
        _row(
            2,
            f"{dataset}: useful non-robust features",
            "Some features have usefulness > chance but robustness ~ 0 (Sec. 4)",
            "count of features with usefulness > "
            f"{chance:.2f} and robustness <= {nonrobust_max}: "
            + ", ".join(f"{a}: {c}" for a, c in count.items()),
            "at least one such feature for every architecture",
            _status([c > 0 for c in count.values()]),
        ),
    ]
    return rows


def consistency_claim(dataset: str, table: Any, top: int) -> dict[str, Any]:
    """Row for finding 3 from a `consistency_table` (off-diagonal pairs)."""
    off = table[table["arch_a"] != table["arch_b"]]
    sp, ov = off["spearman_robustness"], off["subspace_overlap"]
    n_arch = table["arch_a"].nunique()
    ok = [sp.mean() >= 0.5, ov.mean() >= 0.5]
    status = "pass" if all(ok) else ("fail" if not any(ok) else "inconclusive")
    if off.empty:
        status = "inconclusive"
    return _row(
        3,
        f"{dataset}: consistency of features across {n_arch} architectures",
        "Features are surprisingly consistent across architectures (abstract, "
        "supp. D.2: R-U plots change little between architectures)",
        f"pairwise Spearman of robustness vectors mean {sp.mean():.2f} "
        f"(min {sp.min():.2f}); of usefulness vectors mean "
        f"{off['spearman_usefulness'].mean():.2f}; top-{top} eigenspace overlap "
        f"(mean cos^2 of principal angles) mean {ov.mean():.2f} (min {ov.min():.2f}); "
        f"pairs scored on {off['n_eval'].min()}-{off['n_eval'].max()} shared points",
        f"mean pairwise Spearman >= 0.5 and mean top-{top} overlap >= 0.5",
        status,
    )


def topr_claim(dataset: str, task: str, res: dict[str, np.ndarray]) -> dict[str, Any]:
    """Row for finding 7 (robust features alone are not enough, supp. D.3).

    Binary: robust accuracy against own FGSM attacks peaks at an interior r.
    Multiclass: no r reaches both clean and own-FGSM accuracy >= 0.5.
    """
    rs, clean = np.asarray(res["r"]), np.asarray(res["clean"])
    fgsm, pgd = np.asarray(res["fgsm_own"]), np.asarray(res["pgd_own"])
    j, jp = int(np.argmax(fgsm)), int(np.argmax(pgd))
    measured = (
        f"own-FGSM accuracy peaks at r={rs[j]} ({fgsm[j]:.2f}, clean {clean[j]:.2f}); "
        f"own-PGD peaks at r={rs[jp]} ({pgd[jp]:.2f}); at r={rs[-1]}: clean "
        f"{clean[-1]:.2f}, FGSM {fgsm[-1]:.2f}, PGD {pgd[-1]:.2f}; "
        f"max_r min(clean, FGSM own) = {np.max(np.minimum(clean, fgsm)):.2f}"
    )
    if task == "binary":
        ok = 0 < j < rs.size - 1 and fgsm[j] > fgsm[-1]
        return _row(
            7,
            f"{dataset}: top-r robust kernels (binary)",
            "Keeping the most robust features gives some robustness with a sweet "
            "spot in r (supp. D.3, Fig. 5)",
            measured,
            "own-FGSM robust accuracy has an interior maximum over r, above its "
            "value at the largest r",
            "pass" if ok else "fail",
        )
    ok = bool(np.max(np.minimum(clean, fgsm)) < 0.5)
    return _row(
        7,
        f"{dataset}: top-r robust kernels (multiclass)",
        "No r gives non-trivial accuracy without giving up robustness (supp. D.3, "
        "Fig. 4)",
        measured,
        "no r with both clean and own-FGSM accuracy >= 0.5",
        "pass" if ok else "fail",
    )


def proposition1_claim(checks: dict[str, dict[str, float]], tol: float = 1e-8):
    """Row for finding 14 from `proposition1_check` results (arch -> dict)."""
    if not checks:
        return _row(
            14,
            "Proposition 1 on real data",
            "identity",
            "no binary dataset scored",
            f"relative error < {tol:g}",
            "inconclusive",
        )
    g = max(c["grad_rel_err"] for c in checks.values())
    ga = max(c["grad_max_abs_err"] for c in checks.values())
    f = max(c["sum_rel_err"] for c in checks.values())
    return _row(
        14,
        "Proposition 1: loss gradient of f_inf = sum_i alpha_i grad L(f^(i))",
        "Exact identity (supp. D.1, Eq. 32-33); also sum_i f^(i) = f_inf (Eq. 31)",
        f"max over {len(checks)} kernels ({', '.join(checks)}): gradient max abs "
        f"error {ga:.2e} (relative {g:.2e}); sum of features vs f_inf relative "
        f"error {f:.2e} (float64, all n features, against a linear solve)",
        f"relative errors < {tol:g}",
        "pass" if max(g, f) < tol else "fail",
    )
