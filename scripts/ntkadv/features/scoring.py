"""Label-free scoring of eigenfeatures and their gradient images (supp. D.2).

Each feature f⁽ⁱ⁾ (`ntkadv.features.algebra`) is a classifier (sign for binary,
argmax for multiclass) scored by usefulness ρ_i (clean accuracy, supp. Eq. 1) and
robustness γ_i (accuracy under an ℓ∞ FGSM attack computed on the feature itself,
supp. Eq. 2 / App. D.3; a point counts only if it is correct clean and attacked).
`label_free_projections` computes what any training labels need (the ± trick);
`ntkadv.features.rescore` turns it into scores for the true labels and for label
permutations without evaluating the kernel again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ntkadv.features.algebra import (
    feature_loss_gradients,
    feature_outputs,
    feature_weights,
    toward_sides,
)
from ntkadv.features.rescore import FeatureScores, LabelFree, feature_scores

if TYPE_CHECKING:
    from ntkadv.kernels.jacobians import ImplicitJacobian, InputJacobian

#: (x0 (P, d), sign_g (P, d), side (P,), v (n, P), eps) -> p (P,) at the perturbed
#: points, with an attribute `batch` (`ntkadv.features.projections.PairProjector`).
PairProjectFn = Callable[..., np.ndarray]


def perturbed_projections(
    project: PairProjectFn,
    x_eval: np.ndarray,
    sign_grad_p: np.ndarray,
    eigvecs_sel: np.ndarray,
    sides: np.ndarray,
    eps: float,
) -> np.ndarray:
    """p_i(clip(x + ε·side_i(x)·sign ∇p_i(x), 0, 1)) for K features at m points.

    Args:
        project: a `PairProjectFn` (e.g. `projections.PairProjector`) with a
            `batch` attribute (pairs per call).
        x_eval: (m, d) clean points in [0, 1].
        sign_grad_p: (m, d, K) sign of D(x)ᵀ v_i (int8 or float).
        eigvecs_sel: (n, K) the features' eigenvectors v_i.
        sides: (K, m) in {−1, 0, +1} (NaN: pair not evaluated, left NaN).
        eps: ℓ∞ budget.

    Returns:
        (K, m) float64 projections (NaN where `sides` is NaN).
    """
    k_feat, m = sides.shape
    out = np.full((k_feat, m), np.nan)
    feat, pt = np.nonzero(np.isfinite(sides))  # feature-major pair order
    if feat.size == 0:
        return out
    b = project.batch
    for lo in range(0, feat.size, b):
        f, q = feat[lo : lo + b], pt[lo : lo + b]
        out[f, q] = project(
            x_eval[q],
            sign_grad_p[q, :, f],
            sides[f, q],
            eigvecs_sel[:, f],
            eps,
        )
    return out


def contraction_signs(
    jac: InputJacobian | ImplicitJacobian, c: np.ndarray, rows: int
) -> np.ndarray:
    """sign(D(x)ᵀ c) at every evaluation point of `jac`, `rows` points at a time.

    The FGSM directions sign ∇p_i(x) of the features p_i = Θ(·, X) v_i (supp.
    Eq. 9 with c = v_i; the ± trick of Sec. 4 needs only their signs). Contracting
    a block of points at a time keeps the float64 contraction at rows x d x K
    instead of m x d x K (the whole (m, d, K) array was the peak of the top-r job:
    at the paper's 500 validation points, d = 3072 and 10,000 candidates it is
    123 GB, issue 24). Each point's contraction is that of the unblocked call.

    Args:
        jac: the Jacobian cache at the m evaluation points (`eval_subset`).
        c: (n, K) coefficients (e.g. the eigenvectors of a feature chunk).
        rows: evaluation points contracted per call (>= 1).

    Returns:
        (m, d, K) int8 in {−1, 0, 1}.
    """
    if rows < 1:
        raise ValueError(f"rows must be >= 1, got {rows}")
    c = np.asarray(c, dtype=np.float64)
    out = np.empty((jac.m, jac.d, c.shape[1]), dtype=np.int8)
    for i0 in range(0, jac.m, rows):
        i1 = min(i0 + rows, jac.m)
        out[i0:i1] = np.sign(jac.eval_subset(i0, i1).contract(c))
    return out


def label_free_projections(
    *,
    eigvals: np.ndarray,
    eigvecs: np.ndarray,
    indices: Sequence[int],
    k_eval_train: np.ndarray,
    grad_p: np.ndarray,
    x_eval: np.ndarray,
    project: PairProjectFn,
    eps: float,
    sides: str = "toward",
) -> LabelFree:
    """Label-free projections of K features at m points (the ± trick, Sec. 4).

    p_i(x) = Θ(x, X) v_i at the clean points (from the cached kernel rows) and at
    the FGSM candidates x± = clip(x ± ε sign ∇p_i(x), 0, 1), with exact kernel rows
    Θ(x±, X) (`project`). With sides="toward" only the side that moves p_i toward
    zero is evaluated (the side of every correctly classified point, see
    `ntkadv.features.rescore`): K·m perturbed rows; "both" evaluates x+ and x−
    (2·K·m rows, needed only for attacked accuracy of misclassified points).

    Args:
        eigvals, eigvecs: spectrum of Θ(X, X), (n,), (n, n).
        indices: (K,) eigen-indices to score.
        k_eval_train: (m, n) Θ(x, X) at the clean evaluation points.
        grad_p: (m, d, K) = D(x)ᵀ V[:, indices] (one contraction), or only its
            signs (int8, `contraction_signs`): nothing else of it is used.
        x_eval: (m, d) flattened clean evaluation inputs in [0, 1].
        project: a `PairProjectFn` over the training set.
        eps: ℓ∞ budget.
        sides: "toward" or "both".

    Returns:
        `LabelFree` (NaN on the sides not evaluated).
    """
    return label_free_projections_at(
        eigvals=eigvals,
        eigvecs=eigvecs,
        indices=indices,
        k_eval_train=k_eval_train,
        grad_p=grad_p,
        x_eval=x_eval,
        project=project,
        eps_values=(eps,),
        sides=sides,
    )[0]


def label_free_projections_at(
    *,
    eigvals: np.ndarray,
    eigvecs: np.ndarray,
    indices: Sequence[int],
    k_eval_train: np.ndarray,
    grad_p: np.ndarray,
    x_eval: np.ndarray,
    project: PairProjectFn,
    eps_values: Sequence[float],
    sides: str = "toward",
) -> list[LabelFree]:
    """`label_free_projections` at several ℓ∞ budgets from one contraction.

    p_i(x), sign ∇p_i(x) and the side toward zero do not depend on ε, so they are
    computed once; only the perturbed kernel rows Θ(x±, X) are evaluated per ε
    (K·m rows per ε with sides="toward"). Used for the paper's ε and the extra
    ε of `datasets.<d>.extra_eps` (findings 1, 2 and 7 off the floor).

    Args:
        eps_values: (E,) ℓ∞ budgets; the other arguments as `label_free_projections`.

    Returns:
        E `LabelFree`, one per ε in `eps_values` order (shared p_clean, indices,
        eigvals, eigvecs).
    """
    idx = np.asarray(indices, dtype=np.int64)
    v = np.asarray(eigvecs, dtype=np.float64)[:, idx]
    p_clean = (np.asarray(k_eval_train) @ v).T  # (K, m)
    sign_g = np.sign(grad_p).astype(np.int8)  # (m, d, K)
    if sides not in ("toward", "both"):
        raise ValueError(f"sides must be 'toward' or 'both', got {sides!r}")
    out = []
    for eps in eps_values:
        if sides == "toward":
            t = toward_sides(p_clean)
            p_t = perturbed_projections(project, x_eval, sign_g, v, t, eps)
            p_plus = np.where(t > 0, p_t, np.nan)
            p_minus = np.where(t < 0, p_t, np.nan)
        else:
            ones = np.ones_like(p_clean)
            p_plus = perturbed_projections(project, x_eval, sign_g, v, ones, eps)
            p_minus = perturbed_projections(project, x_eval, sign_g, v, -ones, eps)
        out.append(
            LabelFree(
                indices=idx,
                eigvals=np.asarray(eigvals, dtype=np.float64)[idx],
                eigvecs=v,
                p_clean=p_clean,
                p_plus=p_plus,
                p_minus=p_minus,
            )
        )
    return out


def score_features(
    *,
    y_train: np.ndarray,
    y_eval: np.ndarray,
    labels_eval: np.ndarray,
    task: str,
    num_classes: int,
    **projection_args,
) -> tuple[LabelFree, FeatureScores]:
    """Label-free projections and the scores of the given training labels.

    Args:
        y_train: (n, k) training targets; y_eval: (m, k); labels_eval: (m,).
        task: "binary" or "multiclass"; num_classes: C.
        **projection_args: the keyword arguments of `label_free_projections`.

    Returns:
        (`LabelFree`, `FeatureScores` of y_train).
    """
    lf = label_free_projections(**projection_args)
    return lf, feature_scores(lf, y_train, y_eval, labels_eval, task, num_classes)


def nonnull_indices(eigvals: np.ndarray, clip_floor: float, n_clipped: int):
    """Eigen-indices outside the clipped null space of Θ(X, X), and how many not.

    Eigenvalues raised to the clipping floor by `ntkadv.spectra.eigh` (e.g. from
    duplicated training images) carry no feature: λ_i⁻¹ would only amplify
    rounding. They are the last `n_clipped` (descending order); any eigenvalue at
    or below the floor is excluded as well.

    Returns:
        (valid (n',) int64 ascending, excluded count).
    """
    lam = np.asarray(eigvals)
    keep = (lam > clip_floor) & (np.arange(lam.size) < lam.size - int(n_clipped))
    valid = np.flatnonzero(keep)
    return valid, int(lam.size - valid.size)


def spread_indices(valid: np.ndarray, start: int, count: int | None) -> np.ndarray:
    """Eigen-indices of `valid` at or above `start`, `count` of them evenly spread.

    The features scored beyond the first top_k (features.spread), so that finding 2
    sees the whole spectrum (the notebook's useful non-robust features sit at 75-99 %
    of n). Positions round(linspace(0, R − 1, count)) of the R remaining indices:
    the first and the last are always included.

    Args:
        valid: (n',) ascending eigen-indices outside the null space.
        start: first index considered (features.top_k).
        count: how many (None: all of them; 0: none).

    Returns:
        (count',) int64 ascending, count' = min(count, R).
    """
    rest = np.asarray(valid, dtype=np.int64)
    rest = rest[rest >= start]
    if count is None or count >= rest.size:
        return rest
    if count <= 0:
        return rest[:0]
    pos = np.unique(np.round(np.linspace(0, rest.size - 1, count)).astype(np.int64))
    return rest[pos]


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
