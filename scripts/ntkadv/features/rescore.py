"""Scores of eigenfeatures for any training labels from label-free projections.

Rule score_features stores, per scored feature i and evaluation point x, the
label-free projections p_i(x) = Θ(x, X) v_i at the clean point and at the FGSM
candidates x± = clip(x ± ε sign ∇p_i(x), 0, 1) (`ntkadv.features.algebra`, the ±
trick). For training targets Y' (the true labels or a permutation of them) the
feature is f⁽ⁱ⁾(x) = p_i(x) w_i with w_i = λ_i⁻¹ Y'ᵀ v_i, its FGSM point is x+, x−
or x (s_i = 0) by the sign of s_i under Y' (`algebra.attack_sides`), and

* usefulness ρ_i = mean_x 1{f⁽ⁱ⁾(x) correct} (supp. Eq. 1),
* robustness γ_i = mean_x 1{f⁽ⁱ⁾(x) correct AND f⁽ⁱ⁾(x_adv) correct} (supp. Eq. 2
  with the convention that a point misclassified clean is never robust).

No kernel is evaluated here (NumPy only: the CPU claims and plot rules rescore the
null permutations). Only the side that moves p_i toward zero is stored (the other
is NaN): it is the side the attack takes at every correctly classified point, so
robustness is exact for every label set; a correctly classified point whose side is
not stored (p_i(x) = 0 exactly, or all w_ir equal) is counted in `unresolved` and
as not robust.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ntkadv.features.algebra import attack_sides
from ntkadv.losses import class_accuracies, predictions_correct

#: Arrays of scores.h5 that `LabelFree.from_arrays` reads.
LABEL_FREE_KEYS = ("indices", "eigvals", "eigvecs", "p_clean", "p_plus", "p_minus")


@dataclasses.dataclass(frozen=True)
class LabelFree:
    """Label-free projections of K eigenfeatures at m evaluation points.

    Attributes:
        indices: (K,) eigen-indices (0-based, descending eigenvalue).
        eigvals: (K,) their eigenvalues λ_i.
        eigvecs: (n, K) their eigenvectors v_i.
        p_clean: (K, m) p_i(x).
        p_plus: (K, m) p_i(x+) (NaN where not evaluated).
        p_minus: (K, m) p_i(x−) (NaN where not evaluated).
    """

    indices: np.ndarray
    eigvals: np.ndarray
    eigvecs: np.ndarray
    p_clean: np.ndarray
    p_plus: np.ndarray
    p_minus: np.ndarray

    @classmethod
    def from_arrays(cls, arrays: dict) -> LabelFree:
        """From a dict holding `LABEL_FREE_KEYS` (e.g. `h5io.read(scores.h5)`)."""
        return cls(**{k: np.asarray(arrays[k]) for k in LABEL_FREE_KEYS})

    def select(self, rows: np.ndarray) -> LabelFree:
        """The features at positions `rows` (boolean mask or integer positions)."""
        return LabelFree(
            indices=self.indices[rows],
            eigvals=self.eigvals[rows],
            eigvecs=self.eigvecs[:, rows],
            p_clean=self.p_clean[rows],
            p_plus=self.p_plus[rows],
            p_minus=self.p_minus[rows],
        )

    def points(self, m: int) -> LabelFree:
        """The first m evaluation points only."""
        return dataclasses.replace(
            self,
            p_clean=self.p_clean[:, :m],
            p_plus=self.p_plus[:, :m],
            p_minus=self.p_minus[:, :m],
        )


@dataclasses.dataclass(frozen=True)
class Rescored:
    """Correctness of K features at m points under L label sets.

    Attributes:
        correct_clean: (L, K, m) bool.
        correct_robust: (L, K, m) bool, correct clean and under the feature's FGSM.
        unresolved: (L,) correctly classified pairs whose FGSM side is not stored
            (counted as not robust).
    """

    correct_clean: np.ndarray
    correct_robust: np.ndarray
    unresolved: np.ndarray

    @property
    def usefulness(self) -> np.ndarray:
        """(L, K) clean accuracy ρ_i."""
        return self.correct_clean.mean(axis=-1)

    @property
    def robustness(self) -> np.ndarray:
        """(L, K) robust accuracy γ_i (correct clean and attacked)."""
        return self.correct_robust.mean(axis=-1)


def weights_for(lf: LabelFree, y_train: np.ndarray) -> np.ndarray:
    """w_i = λ_i⁻¹ Y'ᵀ v_i for one (n, k) or L stacked (L, n, k) target sets.

    Returns:
        (K, k) or (L, K, k) float64.
    """
    y = np.asarray(y_train, dtype=np.float64)
    v = np.asarray(lf.eigvecs, dtype=np.float64)
    return np.einsum("nK,...nk->...Kk", v, y) / lf.eigvals[:, None]


def rescore(
    lf: LabelFree, y_train: np.ndarray, y_eval: np.ndarray, task: str
) -> Rescored:
    """Clean and robust correctness of every feature under L training-label sets.

    Args:
        lf: label-free projections.
        y_train: (L, n, k) training targets (stack the true labels and any
            permutations of them; (n, k) is treated as L = 1).
        y_eval: (m, k) evaluation targets (never permuted).
        task: "binary" or "multiclass".

    Returns:
        `Rescored` with leading axis L.
    """
    y_train = np.asarray(y_train, dtype=np.float64)
    if y_train.ndim == 2:
        y_train = y_train[None]
    w = weights_for(lf, y_train)  # (L, K, k)
    p = np.broadcast_to(lf.p_clean, (w.shape[0], *lf.p_clean.shape))
    f_clean = p[..., None] * w[:, :, None, :]  # (L, K, m, k)
    clean = predictions_correct(f_clean, y_eval, task)
    side = attack_sides(p, w, y_eval, task)  # (L, K, m)
    p_adv = np.where(side > 0, lf.p_plus, np.where(side < 0, lf.p_minus, p))
    known = np.isfinite(p_adv)
    f_adv = np.where(known, p_adv, 0.0)[..., None] * w[:, :, None, :]
    attacked = predictions_correct(f_adv, y_eval, task) & known
    return Rescored(
        correct_clean=clean,
        correct_robust=clean & attacked,
        unresolved=np.sum(clean & ~known, axis=(1, 2)),
    )


def permuted_targets(y_train: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """(P, n, k) training targets with the labels permuted: Y'_j = Y[perm_j]."""
    return np.asarray(y_train)[np.asarray(perms, dtype=np.int64)]


def robust_sweep(
    lf: LabelFree,
    y_train: np.ndarray,
    y_eval: np.ndarray,
    task: str,
    perms: np.ndarray,
    chunk: int = 50,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Robustness of K features under the true training labels, −Y and P
    permutations, reduced as the finding-1 orientation test needs it
    (`ntkadv.features.claims`), in chunks of `chunk` label sets (memory
    O(chunk·K·m·k)).

    Args:
        lf: label-free projections of the K features.
        y_train: (n, k) true training targets.
        y_eval: (m, k) evaluation targets (never permuted).
        task: "binary" or "multiclass".
        perms: (P, n) label permutations (`ntkadv.claims.nulls.label_permutations`).
        chunk: label sets rescored at once.

    Returns:
        counts: (1 + P, m) int64, number of the K features robust at each
            evaluation point (index 0: true labels, 1..P: the permutations);
        robustness: (1 + P, K) robust accuracy γ_i per label set;
        flipped: (K, m) bool, robust correctness under −Y (binary: every
            feature's other orientation, w_i → −w_i; the ceiling of the test).
    """
    y = np.asarray(y_train, dtype=np.float64)
    sets = np.concatenate([y[None], -y[None], permuted_targets(y, perms)])
    counts, robustness, flipped = [], [], None
    for lo in range(0, sets.shape[0], chunk):
        r = rescore(lf, sets[lo : lo + chunk], y_eval, task).correct_robust
        if lo == 0:
            flipped = r[1]
            r = np.delete(r, 1, axis=0)
        counts.append(r.sum(axis=1, dtype=np.int64))
        robustness.append(r.mean(axis=-1))
    return np.concatenate(counts), np.concatenate(robustness), flipped


@dataclasses.dataclass(frozen=True)
class FeatureScores:
    """Usefulness and robustness of K eigenfeatures on m evaluation points (one
    label set).

    Attributes:
        indices: (K,) eigen-indices (0-based, descending eigenvalue).
        usefulness: (K,) clean accuracy ρ_i.
        robustness: (K,) robust accuracy γ_i (correct clean and under FGSM on the
            feature itself).
        usefulness_per_class: (K, C).
        robustness_per_class: (K, C).
        correct_clean: (K, m) bool.
        correct_robust: (K, m) bool.
        unresolved: see `Rescored`.
    """

    indices: np.ndarray
    usefulness: np.ndarray
    robustness: np.ndarray
    usefulness_per_class: np.ndarray
    robustness_per_class: np.ndarray
    correct_clean: np.ndarray
    correct_robust: np.ndarray
    unresolved: int


def feature_scores(
    lf: LabelFree,
    y_train: np.ndarray,
    y_eval: np.ndarray,
    labels_eval: np.ndarray,
    task: str,
    num_classes: int,
) -> FeatureScores:
    """`FeatureScores` of one label set (e.g. the true training labels)."""
    r = rescore(lf, y_train, y_eval, task)
    clean, robust = r.correct_clean[0], r.correct_robust[0]
    return FeatureScores(
        indices=np.asarray(lf.indices),
        usefulness=clean.mean(axis=1),
        robustness=robust.mean(axis=1),
        usefulness_per_class=class_accuracies(clean, labels_eval, num_classes),
        robustness_per_class=class_accuracies(robust, labels_eval, num_classes),
        correct_clean=clean,
        correct_robust=robust,
        unresolved=int(r.unresolved[0]),
    )
