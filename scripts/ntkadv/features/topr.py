"""Top-r robust kernels (supp. App. D.3, Figs 4-5).

With S_r the r most robust features (ranked on a validation split),
Θ'_r = Σ_{i∈S_r} λ_i v_i v_iᵀ and f'_r(x) = Θ(x, X) Θ'_r⁺ Y; since
Θ'_r⁺ = Σ_{i∈S_r} λ_i⁻¹ v_i v_iᵀ, f'_r = Σ_{i∈S_r} f⁽ⁱ⁾ with coefficients
c_r = V_S diag(1/λ_S) V_Sᵀ Y.

The ranking uses validation robustness of the single features, from label-free
projections (`ntkadv.features.scoring.label_free_projections`), so that the null
control (permuted training labels) re-ranks from the same projections: only the
own-FGSM evaluation of each label set's f'_r needs new kernel rows (R·m).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ntkadv.features.algebra import feature_weights, fgsm_points
from ntkadv.features.rescore import LabelFree, rescore
from ntkadv.losses import loss_output_gradient, predictions_correct
from ntkadv.typing import ContractFn, KernelRowsFn


def robustness_ranking(robustness: np.ndarray, indices: Sequence[int]) -> np.ndarray:
    """Eigen-indices sorted by robustness, most robust first (ties: smaller index)."""
    idx = np.asarray(indices, dtype=np.int64)
    order = np.lexsort((idx, -np.asarray(robustness, dtype=np.float64)))
    return idx[order]


#: Candidates whose label-free validation projections the top-r job computes per
#: step (`ntkadv.features.task._Caches.label_free_at`).
PROJECTION_CHUNK = 200
#: Validation points per Jacobian contraction of the ranking: the float64 block
#: D(x)ᵀ V[:, chunk] is POINT_BLOCK x d x PROJECTION_CHUNK (18.8 MB at d = 3072),
#: its signs n_val x d x PROJECTION_CHUNK int8 (0.3 GB at the paper's n_val = 500);
#: unblocked, the (n_val, d, all candidates) float64 array and its temporary were
#: the job's peak (2 x 123 GB at the paper's sizes, issue 24).
POINT_BLOCK = 4
#: Candidates rescored at once by `rank_label_sets`: its (L, chunk, v, k) float64
#: temporaries (~5 of them) instead of (L, N, v, k) (10 GB at the paper's MNIST
#: top-r: L = 5, N = 10,000, v = 500, k = 10).
RANK_CHUNK = 256


def rank_label_sets(
    lf_val: LabelFree,
    y_train: np.ndarray,
    y_val: np.ndarray,
    task: str,
    chunk: int = RANK_CHUNK,
) -> tuple[np.ndarray, np.ndarray]:
    """Rank the candidates by validation robustness under each label set (D.3).

    The ranking depends on the training labels (robustness of f⁽ⁱ⁾ does), so every
    label set of the null control gets its own, from the same label-free
    validation projections (`ntkadv.features.rescore`), `chunk` candidates at a
    time (each feature's robustness is its own: the chunks only bound memory).

    Args:
        lf_val: label-free projections of the N candidates at the validation points.
        y_train: (L, n, k) training targets (true labels first, then permutations).
        y_val: (v, k) validation targets.
        task: "binary" or "multiclass".
        chunk: candidates rescored at once.

    Returns:
        ranked (L, N) eigen-indices, most robust first; robustness (L, N) in
        candidate order.
    """
    n_cand = lf_val.indices.size
    rob = np.concatenate(
        [
            rescore(
                lf_val.select(np.arange(lo, min(lo + chunk, n_cand))),
                y_train,
                y_val,
                task,
            ).robustness
            for lo in range(0, max(n_cand, 1), chunk)
        ],
        axis=1,
    )  # (L, N)
    ranked = np.stack([robustness_ranking(row, lf_val.indices) for row in rob])
    return ranked, rob


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


def _fgsm_points(f, grad_f, x_eval, y_eval, eps, task):
    """FGSM points of J machines: f (J, m, k), grad_f (m, d, J, k) -> (J, m, d)."""
    s = loss_output_gradient(f, y_eval, task)  # (J, m, k)
    grad = np.einsum("jmr,mdjr->jmd", s, grad_f)
    return fgsm_points(x_eval[None], grad, eps)


def own_fgsm_correctness(
    *,
    coefs: np.ndarray,
    k_eval_train: np.ndarray,
    x_eval: np.ndarray,
    y_eval: np.ndarray,
    contract: ContractFn,
    kernel_rows_fn: KernelRowsFn,
    eps: float,
    task: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Clean and own-FGSM robust correctness of the top-r machines f'_r (supp. D.3).

    The attack on f'_r(x) = Θ(x, X) c_r uses its own gradient D(x)ᵀ c_r (one
    contraction with all R coefficient sets) and exact kernel rows at the FGSM
    points (R·m rows). Robust = correct clean AND correct at the FGSM point.

    Args:
        coefs: (R, n, k) top-r coefficients.
        k_eval_train: (m, n) Θ(x, X) at the clean evaluation points.
        x_eval: (m, d) flattened clean inputs; y_eval: (m, k).
        contract: c (n, J) -> D(x)ᵀ c (m, d, J) at the evaluation points.
        kernel_rows_fn: x (p, d) -> Θ(x, X) (p, n).
        eps: ℓ∞ budget; task: "binary" | "multiclass".

    Returns:
        (clean (R, m) bool, robust (R, m) bool).
    """
    n_r, n, k = coefs.shape
    m, d = x_eval.shape
    f_clean = np.einsum("mn,jnr->jmr", k_eval_train, coefs)
    grad = contract(coefs.transpose(1, 0, 2).reshape(n, n_r * k)).reshape(m, d, n_r, k)
    x_adv = _fgsm_points(f_clean, grad, x_eval, y_eval, eps, task)  # (R, m, d)
    rows = np.asarray(kernel_rows_fn(x_adv.reshape(-1, d))).reshape(n_r, m, n)
    clean = predictions_correct(f_clean, y_eval, task)
    attacked = predictions_correct(np.einsum("jmn,jnr->jmr", rows, coefs), y_eval, task)
    return clean, clean & attacked


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
    """Clean, FGSM and PGD correctness of the top-r kernel machines f'_r (supp. D.3).

    Attacks: "transfer" ones are computed on the full kernel machine f_∞ (c_full),
    "own" ones on f'_r itself; all are evaluated on f'_r. Every robust entry is
    correct clean AND correct attacked.

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
        Dict of (R, m) bool: clean, fgsm_transfer, pgd_transfer, fgsm_own, pgd_own;
        and the full kernel's own (m,) bool: full_clean, full_fgsm, full_pgd.
    """
    n_r, n, k = coefs.shape
    m, d = x_eval.shape

    def correct(f):
        return predictions_correct(f, y_eval, task)

    clean, fgsm_own = own_fgsm_correctness(
        coefs=coefs,
        k_eval_train=k_eval_train,
        x_eval=x_eval,
        y_eval=y_eval,
        contract=contract,
        kernel_rows_fn=kernel_rows_fn,
        eps=eps,
        task=task,
    )
    # transfer: attacks from the full kernel, evaluated on every f'_r
    f_full = k_eval_train @ c_full
    full_clean = correct(f_full)
    x_fgsm_full = _fgsm_points(
        f_full[None], contract(c_full)[:, :, None, :], x_eval, y_eval, eps, task
    )[0]
    x_pgd_full = np.asarray(pgd_fn(c_full)).reshape(m, d)
    k_fgsm_full = kernel_rows_fn(x_fgsm_full)
    k_pgd_full = kernel_rows_fn(x_pgd_full)
    pgd_own = np.zeros((n_r, m), dtype=bool)
    for j in range(n_r):
        x_adv = np.asarray(pgd_fn(coefs[j])).reshape(m, d)
        pgd_own[j] = correct(kernel_rows_fn(x_adv) @ coefs[j])
    return {
        "clean": clean,
        "fgsm_transfer": clean & correct(np.einsum("mn,jnr->jmr", k_fgsm_full, coefs)),
        "pgd_transfer": clean & correct(np.einsum("mn,jnr->jmr", k_pgd_full, coefs)),
        "fgsm_own": fgsm_own,
        "pgd_own": clean & pgd_own,
        "full_clean": full_clean,
        "full_fgsm": full_clean & correct(k_fgsm_full @ c_full),
        "full_pgd": full_clean & correct(k_pgd_full @ c_full),
    }
