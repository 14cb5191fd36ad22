"""Statistics layer of the features claims (`ntkadv.features.claims`).

`ArchCorrectness` holds one architecture's per-point correctness under the true
training labels and P permutations; the statistics of findings 1, 2 and 7
(`band_gap`, `useful_nonrobust_count`, `topr_sweet_spot`, `topr_tradeoff`) take
accuracies computed with optional bootstrap multiplicities (`_acc`, `_count`,
`_maj`); `pool` pools a label-set statistic over units (architectures or pairs):

* effect = statistic(true) − mean statistic(permutations); SE² = SE_boot² +
  sd_perm²·(1 + 1/P), SE_boot from a paired bootstrap over evaluation points (the
  true and permuted statistics on the same resample);
* pooled over the architectures of a dataset: effect = mean over architectures,
  SE_boot = mean of the per-architecture SE_boot (the perfectly correlated bound),
  sd_perm from the pooled statistic of each permutation;
* the SE carries the Satterthwaite df of SE_boot² + sd_perm²(1 + 1/P) (P − 1 when
  sd_perm dominates, `core.replicate_se`), so a verdict uses the Student-t critical
  value; each unit's own `Pooled` (its own sd_perm and df) is in `Pooled.units`, for
  the members of a pooled claims row.

NumPy only (the claims rule runs in the CPU environment).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping

import numpy as np

from ntkadv.claims import core

#: Bootstrap resamples of every SE_boot (`ntkadv.features.claims.PAIR_REPS` per
#: architecture pair of finding 3).
BOOT_REPS = 1000
#: Bootstrap seed (fixed: the resamples are part of the statistic's definition).
BOOT_SEED = 0


@dataclasses.dataclass(frozen=True)
class OrientationSweep:
    """Robustness of an architecture's K features under the true training labels
    and many (P' >= 1000) label permutations (`ntkadv.features.rescore.
    robust_sweep`): the exact permutation null of finding 1's orientation test.

    Attributes:
        counts: (1 + P', m) int, features robust at each evaluation point (index
            0: true labels).
        robustness: (1 + P', K) robust accuracy per feature.
        flipped: (K, m) bool, robust correctness under −Y (binary: each
            feature's other orientation).
    """

    counts: np.ndarray
    robustness: np.ndarray
    flipped: np.ndarray

    @property
    def permutations(self) -> int:
        return int(self.counts.shape[0] - 1)


@dataclasses.dataclass(frozen=True)
class ArchCorrectness:
    """Correctness of one architecture's first K features under L label sets.

    Attributes:
        arch: architecture key.
        index: (K,) eigen-indices, ascending.
        clean: (L, K, m) bool; index 0 of L: the true training labels, 1..P: the
            permutations (the same P for every architecture of a dataset).
        robust: (L, K, m) bool, correct clean and under the feature's own FGSM.
        labels: (m,) integer labels of the evaluation points.
        sweep: the same K features under many more permutations (binary tasks,
            finding 1's orientation test); None: that test uses `robust`.
    """

    arch: str
    index: np.ndarray
    clean: np.ndarray
    robust: np.ndarray
    labels: np.ndarray
    sweep: OrientationSweep | None = None

    @property
    def m(self) -> int:
        return int(self.labels.size)

    @property
    def permutations(self) -> int:
        return int(self.clean.shape[0] - 1)


def _float(x: np.ndarray) -> np.ndarray:
    """Correctness as float64 once (a bool @ float product converts on every call)."""
    return np.asarray(x, dtype=np.float64)


def _acc(x: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """Accuracy over the last axis, with bootstrap multiplicities w (m,) if given."""
    if w is None:
        return x.mean(axis=-1)
    return (x @ w) / w.sum()


def _count(x: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """Correct points over the last axis (with multiplicities w), as exact int64."""
    total = x.sum(axis=-1) if w is None else x @ w
    return np.rint(total).astype(np.int64)


def _maj(labels: np.ndarray, w: np.ndarray | None) -> float:
    """Majority-class rate of the (resampled) evaluation labels."""
    if w is None:
        return core.majority_rate(labels)
    return float(np.bincount(labels, weights=w).max() / w.sum())


# ---------------------------------------------------------------- statistics


def band_gap(robust_acc: np.ndarray, index: np.ndarray, top, tail) -> np.ndarray:
    """T = mean robust accuracy of features in `top` − in `tail` (finding 1).

    Args:
        robust_acc: (..., K) robust accuracy per feature.
        index: (K,) eigen-indices.
        top, tail: [lo, hi) eigen-index bands (e.g. [0, 10), [50, 100)).

    Returns:
        (...) T.
    """
    a = (index >= top[0]) & (index < top[1])
    b = (index >= tail[0]) & (index < tail[1])
    return robust_acc[..., a].mean(axis=-1) - robust_acc[..., b].mean(axis=-1)


def useful_threshold(maj: float, m: float) -> float:
    """Usefulness above maj + 2·sqrt(maj(1 − maj)/m) is significantly useful."""
    return maj + 2.0 * math.sqrt(maj * (1.0 - maj) / m)


def useful_nonrobust_count(
    usefulness: np.ndarray, robustness: np.ndarray, maj: float, m: float, gamma_max
) -> np.ndarray:
    """Features significantly above the majority rate with robustness ≤ gamma_max.

    Args:
        usefulness, robustness: (..., K).
        maj: majority-class rate of the evaluation set; m: its size.
        gamma_max: "γ ≈ 0" (features.nonrobust_max).

    Returns:
        (...) counts (float).
    """
    useful = usefulness > useful_threshold(maj, m)
    return np.sum(useful & (robustness <= gamma_max), axis=-1).astype(float)


def topr_sweet_spot(robust: np.ndarray, maj: float) -> np.ndarray:
    """Binary finding 7: max_{r < r_max} robust(r) − max(maj, robust(r_max)).

    Args:
        robust: (..., R) own-FGSM robust accuracy on the ascending r grid (the last
            r is the full candidate set).
        maj: majority-class rate (a constant predictor's accuracy).
    """
    return robust[..., :-1].max(axis=-1) - np.maximum(maj, robust[..., -1])


def nontrivial_level(clean: np.ndarray, maj: float) -> np.ndarray:
    """Multiclass finding 7: the accuracy that counts as "non-trivial", halfway
    from a constant predictor (the majority rate) to the full kernel's clean
    accuracy (r_max, the last r of the grid).

    Args:
        clean: (..., R) clean accuracy on the ascending r grid.
        maj: majority-class rate of the evaluation points.
    """
    return (maj + clean[..., -1]) / 2


def topr_tradeoff(clean: np.ndarray, robust: np.ndarray, maj: float) -> np.ndarray:
    """Multiclass finding 7 (b): h − max_r min(clean(r), robust_own(r)), with h the
    non-trivial level (`nontrivial_level`): positive when no r is both accurate
    and robust at that level.

    Args:
        clean, robust: (..., R) clean / own-FGSM robust accuracy on the r grid.
        maj: majority-class rate of the evaluation points.
    """
    level = nontrivial_level(clean, maj)
    return level - np.minimum(clean, robust).max(axis=-1)


# ---------------------------------------------------------------- pooling


@dataclasses.dataclass(frozen=True)
class Pooled:
    """A statistic under the true labels and P permutations, pooled over units.

    Attributes:
        measured: mean over units of the true-label statistic.
        null: mean over permutations of the pooled permuted statistic.
        effect: measured − null.
        se: sqrt(se_boot² + sd_perm²(1 + 1/P)).
        se_boot: mean over units of the paired bootstrap SE.
        sd_perm: SD over permutations of the pooled permuted statistic.
        per_unit: unit -> (true value, mean permuted value).
        permutations: P.
        reps: bootstrap resamples.
        df: Satterthwaite df of `se` (None: large sample; `core.replicate_se`).
        units: unit -> that unit's own `Pooled` (empty for a unit itself).
    """

    measured: float
    null: float
    effect: float
    se: float
    se_boot: float
    sd_perm: float
    per_unit: dict[str, tuple[float, float]]
    permutations: int
    reps: int = 0
    df: float | None = None
    units: dict[str, Pooled] = dataclasses.field(default_factory=dict)


def pool(
    units: Mapping[str, tuple[Callable[[np.ndarray | None], np.ndarray], int]],
    reps: int | None = None,
    seed: int = BOOT_SEED,
) -> Pooled:
    """Pool a label-set statistic over units (architectures or pairs).

    Args:
        units: name -> (stat, n): stat(w) returns the (L,) statistic under the true
            labels (index 0) and the P permutations, on the evaluation points with
            bootstrap multiplicities w (n,) (None: each point once); NaN where it is
            undefined.
        reps, seed: bootstrap resamples and seed.

    Returns:
        `Pooled` (NaN entries if no unit gives a finite statistic), with each
        unit's own `Pooled` in `units`.
    """
    reps = BOOT_REPS if reps is None else reps
    trues, perms, boots, per_unit = [], [], [], {}
    for name, (stat, n) in units.items():
        vals = np.asarray(stat(None), dtype=float)
        if not np.isfinite(vals[0]) or not np.isfinite(vals[1:]).any():
            continue

        def paired(idx, stat=stat, n=n):
            v = np.asarray(stat(np.bincount(idx, minlength=n).astype(float)))
            return v[0] - np.nanmean(v[1:]) if np.isfinite(v[1:]).any() else np.nan

        trues.append(vals[0])
        perms.append(vals[1:])
        boots.append(core.bootstrap_se(paired, n, reps, seed))
        per_unit[name] = (float(vals[0]), float(np.nanmean(vals[1:])))
    if not trues:
        nan = math.nan
        return Pooled(nan, nan, nan, nan, nan, nan, {}, 0)

    def combine(idx: list[int], names: list[str]) -> Pooled:
        pooled_perm = np.nanmean(np.stack([perms[i] for i in idx]), axis=0)  # (P,)
        p = int(np.isfinite(pooled_perm).sum())
        measured = float(np.mean([trues[i] for i in idx]))
        null = float(np.nanmean(pooled_perm))
        sd = float(np.nanstd(pooled_perm, ddof=1)) if p >= 2 else math.nan
        se_boot = float(np.mean([boots[i] for i in idx]))
        se, df = core.replicate_se(se_boot, sd, p, 1 + 1 / max(p, 1))
        return Pooled(
            measured,
            null,
            measured - null,
            se,
            se_boot,
            sd,
            {n: per_unit[n] for n in names},
            p,
            reps,
            df,
        )

    names = list(per_unit)
    out = combine(list(range(len(names))), names)
    units = {n: combine([i], [n]) for i, n in enumerate(names)}
    return dataclasses.replace(out, units=units)
