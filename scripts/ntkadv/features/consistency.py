"""Consistency of eigenfeatures across architectures (finding 3, supp. D.2).

Two kinds of agreement are measured: of the eigenvectors themselves (the overlap
of the top-r eigenspaces, against kernels whose eigenvectors are replaced by
Haar-random orthonormal bases, `random_basis_overlaps`) and of the per-feature
robustness / usefulness vectors (Spearman, `pair_spearman`, against permuted
training labels).
"""

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


def haar_frames(n: int, r: int, count: int, seed) -> np.ndarray:
    """`count` Haar-distributed orthonormal r-frames in R^n, (count, n, r) float64.

    QR of a standard Gaussian (n, r) matrix with the signs of R's diagonal moved
    into Q (Mezzadri 2007), so every column set is uniform on the Stiefel manifold:
    the first r columns of a Haar-random orthogonal basis of R^n.

    Args:
        n: dimension (training points); r: columns (eigenvectors kept), r <= n.
        count: frames drawn; seed: anything `numpy.random.default_rng` accepts.
    """
    if not 0 < r <= n:
        raise ValueError(f"haar_frames needs 0 < r <= n, got r={r}, n={n}")
    rng = np.random.default_rng(seed)
    q, rr = np.linalg.qr(rng.normal(size=(count, n, r)))
    signs = np.sign(np.diagonal(rr, axis1=-2, axis2=-1))
    return q * np.where(signs == 0, 1.0, signs)[:, None, :]


def random_basis_overlaps(
    archs: list[str],
    pairs: list[tuple[str, str]],
    n: int,
    r: int,
    count: int,
    seed: int,
) -> np.ndarray:
    """Null of finding 3's eigenvector agreement: every kernel keeps its spectrum
    and gets an independent Haar-random orthonormal eigenbasis.

    Draw j gives each architecture its own random basis (shared by all the pairs
    it is in, as its real eigenbasis is) and returns the mean over `pairs` of the
    top-r `subspace_overlap`. The overlap does not depend on the eigenvalues, so
    the kept spectrum enters only through which r columns are "top"; for
    independent uniform r-dimensional subspaces of R^n its expectation is r / n.

    Args:
        archs: architectures (each gets a basis per draw).
        pairs: (arch_a, arch_b) pairs of `archs` that are averaged.
        n, r: dimension (training points) and eigenspace size.
        count: draws; seed: the config seed (stream 3 of this module).

    Returns:
        (count,) mean pairwise overlap per draw.
    """
    out = np.empty(count)
    pos = {a: i for i, a in enumerate(archs)}
    for j in range(count):
        frames = haar_frames(n, r, len(archs), [seed, 3, j])
        out[j] = np.mean(
            [subspace_overlap(frames[pos[a]], frames[pos[b]]) for a, b in pairs]
        )
    return out


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..K along the last axis, ties given their average rank.

    Equal to `scipy.stats.rankdata(x, axis=-1)` (method "average") without
    arithmetic on the values: one lexsort of (row, value), tie groups from equal
    neighbours, group bounds by `reduceat`; non-negative integer input (counts of
    correct points, what the bootstrap of finding 3 ranks) by a counting sort.
    """
    x = np.asarray(x)
    if np.issubdtype(x.dtype, np.integer) and x.size and x.min() >= 0:
        return _count_ranks(x)
    x = x.astype(np.float64)
    shape = x.shape
    k = shape[-1]
    flat = x.reshape(-1, k)
    rows = np.repeat(np.arange(flat.shape[0]), k)
    order = np.lexsort((flat.ravel(), rows))
    sv, sr = flat.ravel()[order], rows[order]
    start = np.ones(sv.size, dtype=bool)
    start[1:] = (sv[1:] != sv[:-1]) | (sr[1:] != sr[:-1])
    bounds = np.flatnonzero(start)
    pos = np.arange(sv.size) - sr * k  # position within the row, 0-based
    first = np.minimum.reduceat(pos, bounds)
    last = np.maximum.reduceat(pos, bounds)
    group = np.cumsum(start) - 1
    ranks = np.empty(sv.size)
    ranks[order] = 0.5 * (first + last)[group] + 1.0
    return ranks.reshape(shape)


def _count_ranks(codes: np.ndarray) -> np.ndarray:
    """`average_ranks` of non-negative integers (e.g. correct-point counts) by a
    counting sort: rank = #(smaller) + (#(equal) + 1) / 2, O(K + max) per row."""
    shape = codes.shape
    flat = codes.reshape(-1, shape[-1]).astype(np.int64)
    width = int(flat.max()) + 1
    rows = np.arange(flat.shape[0])[:, None]
    hist = np.bincount((flat + rows * width).ravel(), minlength=flat.shape[0] * width)
    hist = hist.reshape(flat.shape[0], width)
    below = np.cumsum(hist, axis=1) - hist
    ranks = below[rows, flat] + 0.5 * (hist[rows, flat] + 1)
    return ranks.reshape(shape).astype(np.float64)


def _centred_ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties as `scipy.stats.spearmanr`) minus their mean, last axis."""
    r = average_ranks(x)
    return r - r.mean(axis=-1, keepdims=True)


def _rank_corr(ra: np.ndarray, rb: np.ndarray) -> np.ndarray:
    den = np.sqrt(np.sum(ra * ra, axis=-1) * np.sum(rb * rb, axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.sum(ra * rb, axis=-1) / den
    return np.where(den > 0, out, np.nan)


def spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlation of a[..., :] and b[..., :] along the last axis.

    Average ranks for ties (as `scipy.stats.spearmanr`); NaN where either row is
    constant. Leading axes broadcast.
    """
    a, b = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float))
    return _rank_corr(_centred_ranks(a), _centred_ranks(b))


def pair_spearman(acc_a: np.ndarray, acc_b: np.ndarray) -> tuple[Any, Any]:
    """Cross-architecture Spearman of per-feature accuracies and its null (finding 3).

    Args:
        acc_a, acc_b: (L, K) per-feature accuracies (or counts of correct points:
            ranks are scale-free) of two architectures under L label sets (index 0:
            the true training labels, 1..P: permutations, the same permutation j
            for both), on the same points and features.

    Returns:
        measured ρ(a_true, b_true) and the null (P,) ρ(a_perm_j, b_perm_j): the
        same statistic with both kernels trained on the same permuted labels (an
        exchangeable control: with uninformative "true" labels the measured value
        is one more draw of it). Comparing a_true with b_perm_j instead is not a
        valid null: two kernels given the same labels agree more than two kernels
        given different labels, informative or not.
    """
    ranks = _centred_ranks(np.concatenate([acc_a, acc_b]))
    ra, rb = ranks[: len(acc_a)], ranks[len(acc_a) :]
    both = _rank_corr(ra, rb)  # (L,)
    return both[0], both[1:]


def common_pair(
    x_a: np.ndarray, idx_a: np.ndarray, x_b: np.ndarray, idx_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Two (L, K, m) correctness arrays on their shared eigen-indices and on the
    common prefix of evaluation points (every test subset starts at test point 0)."""
    shared = np.intersect1d(idx_a, idx_b)
    m = min(x_a.shape[-1], x_b.shape[-1])
    ia = np.searchsorted(idx_a, shared)
    ib = np.searchsorted(idx_b, shared)
    return x_a[:, ia, :m], x_b[:, ib, :m]


def consistency_table(
    index: dict[str, np.ndarray],
    clean: dict[str, np.ndarray],
    robust: dict[str, np.ndarray],
    top_eigvecs: dict[str, np.ndarray],
) -> Any:
    """Pairwise cross-architecture consistency of eigenfeatures (finding 3).

    Args:
        index: arch -> (K_a,) scored eigen-indices (ascending).
        clean, robust: arch -> (L, K_a, m_a) clean / robust correctness under L
            label sets (true labels first, then the same permutations for every
            arch), on the first m_a evaluation points.
        top_eigvecs: arch -> (n, r) top-r eigenvectors of Θ(X, X) (same X).

    Returns:
        pandas DataFrame, one row per ordered pair (arch_a, arch_b) including the
        diagonal: n_eval, n_features (shared points / eigen-indices the pair is
        scored on), spearman_robustness and spearman_robustness_null (`pair_spearman`:
        both kernels on the same permuted labels, mean over permutations), the same
        for usefulness, subspace_overlap (mean
        squared principal-angle cosine of the top-r spaces, label-free),
        min_cosine (cosine of the largest principal angle).
    """
    import pandas as pd

    rows = []
    for a in robust:
        for b in robust:
            row = {"arch_a": a, "arch_b": b}
            for name, x in (("robustness", robust), ("usefulness", clean)):
                xa, xb = common_pair(x[a], index[a], x[b], index[b])
                meas, null = pair_spearman(xa.mean(axis=-1), xb.mean(axis=-1))
                row["n_eval"], row["n_features"] = xa.shape[-1], xa.shape[1]
                row[f"spearman_{name}"] = float(meas)
                row[f"spearman_{name}_null"] = (
                    float(np.nanmean(null)) if np.isfinite(null).any() else np.nan
                )
            cos = subspace_cosines(top_eigvecs[a], top_eigvecs[b])
            row["subspace_overlap"] = float(np.mean(cos**2))
            row["min_cosine"] = float(cos.min())
            rows.append(row)
    return pd.DataFrame(rows)
