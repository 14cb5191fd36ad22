"""Consistency of eigenfeatures across architectures (finding 3, supp. D.2)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats


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
