"""Top-r robust kernels (supp. App. D.3, Figs 4-5).

With S_r the r most robust features (ranked on a validation split),
Θ'_r = Σ_{i∈S_r} λ_i v_i v_iᵀ and f'_r(x) = Θ(x, X) Θ'_r⁺ Y; since
Θ'_r⁺ = Σ_{i∈S_r} λ_i⁻¹ v_i v_iᵀ, f'_r = Σ_{i∈S_r} f⁽ⁱ⁾ with coefficients
c_r = V_S diag(1/λ_S) V_Sᵀ Y.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ntkadv.features.algebra import feature_weights, fgsm_points
from ntkadv.features.scoring import score_features
from ntkadv.losses import loss_output_gradient, predictions_correct
from ntkadv.typing import ContractFn, KernelRowsFn


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
