"""Claims rows of the features stage: findings 1, 2, 3, 7 and 14 (experiments.md §3).

Every statistic is measured with the true training labels and, from the same
label-free projections (`ntkadv.features.rescore`), under P permutations of the
training labels (`ntkadv.claims.nulls.label_permutations`): the null control keeps
the kernel, its spectrum, the evaluation points and the attack budget and changes
only Y. Conventions (`ntkadv.claims.core`):

* chance is the majority-class rate of the evaluation set; "useful" means
  significantly above it: usefulness − maj > 2·sqrt(maj(1 − maj)/m);
* robust accuracy counts a point only if it is correct clean AND attacked;
* effect = statistic(true) − mean statistic(permutations); SE² = SE_boot² +
  sd_perm²·(1 + 1/P), SE_boot from a paired bootstrap over evaluation points (the
  true and permuted statistics on the same resample);
* pooled over the architectures of a dataset: effect = mean over architectures,
  SE_boot = mean of the per-architecture SE_boot (the perfectly correlated bound),
  sd_perm from the pooled statistic of each permutation.

NumPy only (the claims rule runs in the CPU environment).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ntkadv.claims import core
from ntkadv.features.consistency import common_pair, pair_spearman, spearman_rows
from ntkadv.features.stats import (
    BOOT_REPS,
    BOOT_SEED,
    ArchCorrectness,
    Pooled,
    _acc,
    _count,
    _float,
    _maj,
    band_gap,
    pool,
    topr_sweet_spot,
    topr_tradeoff,
    useful_nonrobust_count,
)

#: Bootstrap resamples per architecture pair of finding 3 (its statistic ranks
#: 2(1 + P) vectors per resample; `stats.BOOT_REPS` everywhere else).
PAIR_REPS = 200


# ---------------------------------------------------------------- evidence


def _se_method(pooled: Pooled, what: str) -> str:
    if not pooled.permutations:
        return (
            "undefined: the statistic is constant or undefined on every unit (e.g. "
            "no feature robust at any evaluation point)"
        )
    return (
        f"SE² = SE_boot² + sd_perm²(1 + 1/P): paired bootstrap over evaluation "
        f"points ({pooled.reps} resamples, {what}) SE_boot = {pooled.se_boot:.3g}; "
        f"P = {pooled.permutations} training-label permutations, sd_perm = "
        f"{pooled.sd_perm:.3g}; Satterthwaite df "
        f"{'inf' if pooled.df is None else f'{pooled.df:.3g}'}"
    )


def _evidence(statistic: str, pooled: Pooled, what: str, n: int, **kw) -> core.Evidence:
    return core.Evidence(
        statistic=statistic,
        measured=pooled.measured,
        null=pooled.null,
        effect=pooled.effect,
        se=pooled.se,
        se_method=_se_method(pooled, what),
        n=n,
        df=pooled.df,
        replicates=pooled.permutations if pooled.df is not None else None,
        **kw,
    )


def _members(statistic: str, pooled: Pooled, n: int) -> dict[str, core.Evidence] | None:
    """Each unit's own evidence (`core.claim_row` members; None for one unit)."""
    if len(pooled.units) < 2:
        return None
    return {u: _evidence(statistic, p, "this unit", n) for u, p in pooled.units.items()}


def _fmt_units(pooled: Pooled, fmt: str = ".2f") -> str:
    return ", ".join(
        f"{u}: {t:{fmt}} (null {z:{fmt}})" for u, (t, z) in pooled.per_unit.items()
    )


def _points(archs: Sequence[ArchCorrectness]) -> str:
    sizes: dict[int, list[str]] = {}
    for a in archs:
        sizes.setdefault(a.m, []).append(a.arch)
    return "; ".join(
        f"n = {m} evaluation points ({', '.join(v)})" for m, v in sizes.items()
    )


# ---------------------------------------------------------------- findings 1, 2

CLAIM_1 = (
    "Robust features correspond to the largest eigenvalues; robustness -> 0 beyond "
    "a few dozen features (abstract, supp. D.2)"
)
CLAIM_2 = (
    "Useful non-robust features exist: usefulness above the majority-class rate "
    "with robustness ~ 0 (Sec. 4, Ilyas et al. definitions)"
)


def spectrum_claims(
    dataset: str,
    archs: Sequence[ArchCorrectness],
    *,
    top_k: int,
    nonrobust_max: float,
    bands: Mapping[str, Sequence[int]],
    figure: str,
) -> list[dict[str, Any]]:
    """Rows for findings 1 (robust features at the top) and 2 (useful non-robust).

    Args:
        dataset: dataset name.
        archs: every architecture's `ArchCorrectness` (first top_k features).
        top_k: features.top_k.
        nonrobust_max: γ at or below which a feature counts as non-robust.
        bands: {"top": [lo, hi), "tail": [lo, hi)} eigen-index bands of finding 1.
        figure: the R-U figure of the dataset.
    """
    top, tail = list(bands["top"]), list(bands["tail"])
    n_min = min(a.m for a in archs)
    points = _points(archs)
    rows = []
    scored = max(int(a.index.max()) for a in archs) + 1
    if scored < tail[1]:
        rows.append(
            core.missing_row(
                1,
                dataset,
                CLAIM_1,
                f"features.top_k = {top_k} scores eigen-indices < {scored}, finding 1 "
                f"needs the band {tail[0]}-{tail[1] - 1} (features.bands.tail)",
                figure,
            )
        )
    else:

        def gap_stat(a):
            x = _float(a.robust)
            return lambda w: band_gap(_acc(x, w), a.index, top, tail)

        units = {a.arch: (gap_stat(a), a.m) for a in archs}
        pooled = pool(units)
        rho = {a.arch: spearman_rows(a.index, a.robust.mean(axis=-1)) for a in archs}
        rho_t = np.nanmean([r[0] for r in rho.values()])
        rho_0 = np.nanmean([np.nanmean(r[1:]) for r in rho.values()])
        stat = (
            f"T = mean robust accuracy of features {top[0]}-{top[1] - 1} minus of "
            f"features {tail[0]}-{tail[1] - 1}, mean over {len(archs)} architectures"
        )
        rows.append(
            core.claim_row(
                1,
                dataset,
                CLAIM_1,
                _evidence(stat, pooled, "per architecture, then averaged", n_min),
                "effect = T(true training labels) - mean T(P permuted training labels "
                "on the same kernels and spectra) >= 2 SE; robust = correct clean "
                "and under the feature's own FGSM",
                figure,
                note=(
                    f"{points}; per architecture T (null): {_fmt_units(pooled)}; "
                    f"Spearman(eigen-index, robustness) mean {rho_t:.2f} with true "
                    f"labels vs {rho_0:.2f} with permuted labels"
                ),
                members=_members(stat, pooled, n_min),
            )
        )

    def count_stat(a):
        clean, robust = _float(a.clean), _float(a.robust)

        def stat(w):
            use, rob = _acc(clean, w), _acc(robust, w)
            maj = _maj(a.labels, w)
            return useful_nonrobust_count(use, rob, maj, a.m, nonrobust_max)

        return stat

    units = {a.arch: (count_stat(a), a.m) for a in archs}
    pooled = pool(units)
    stat = (
        f"number of the first {top_k} features that are useful (usefulness - "
        f"majority rate > 2 sqrt(maj(1-maj)/m)) and non-robust (robust accuracy <= "
        f"{nonrobust_max}), mean over {len(archs)} architectures"
    )
    rows.append(
        core.claim_row(
            2,
            dataset,
            CLAIM_2,
            _evidence(stat, pooled, "per architecture, then averaged", n_min),
            "effect = count(true training labels) - mean count(P permuted training "
            "labels) >= 2 SE; chance = majority-class rate of the evaluation set",
            figure,
            note=f"{points}; per architecture count (null): "
            + _fmt_units(pooled, ".1f"),
            members=_members(stat, pooled, n_min),
        )
    )
    return rows


# ---------------------------------------------------------------- finding 3

CLAIM_3 = (
    "Features are surprisingly consistent across architectures (abstract; supp. "
    "D.2: R-U plots change little between architectures)"
)


def consistency_claim(
    dataset: str,
    archs: Sequence[ArchCorrectness],
    *,
    overlap: float,
    top: int,
    figure: str,
) -> dict[str, Any]:
    """Row for finding 3: cross-architecture Spearman of robustness and of
    usefulness, each against its label-permutation null (a conjunction).

    Args:
        dataset: dataset name.
        archs: every architecture's `ArchCorrectness` (same permutations).
        overlap: mean top-`top` eigenspace overlap over the pairs (label-free; for
            the note only).
        top: features.consistency_top.
        figure: the consistency figure of the dataset.
    """
    if len(archs) < 2:
        return core.missing_row(
            3, dataset, CLAIM_3, "fewer than two architectures scored", figure
        )
    parts, sizes, members = [], set(), {}
    for name, field in (("robustness", "robust"), ("usefulness", "clean")):
        units = {}
        for i, a in enumerate(archs):
            for b in archs[i + 1 :]:
                xa, xb = map(
                    _float,
                    common_pair(getattr(a, field), a.index, getattr(b, field), b.index),
                )
                sizes.add(xa.shape[-1])

                def stat(w, xa=xa, xb=xb):
                    # counts of correct points (exact integers): ranks by counting
                    meas, null = pair_spearman(_count(xa, w), _count(xb, w))
                    return np.concatenate([[meas], null])

                units[f"{a.arch}-{b.arch}"] = (stat, xa.shape[-1])
        pooled = pool(units, reps=PAIR_REPS)
        statistic = (
            f"mean over architecture pairs of Spearman({name}_A, {name}_B) over "
            f"the first K features"
        )
        parts.append(
            _evidence(
                statistic,
                pooled,
                "per pair on its common points, then averaged",
                min(sizes),
            )
        )
        for pair, ev in (_members(statistic, pooled, min(sizes)) or {}).items():
            members.setdefault(pair, []).append(ev)
    return core.claim_row(
        3,
        dataset,
        CLAIM_3,
        parts,
        "both parts: effect = mean pairwise Spearman with the true training labels "
        "- mean over P permutations of the same mean pairwise Spearman with both "
        "kernels trained on the permuted labels >= 2 SE (the null is the agreement "
        "two kernels show without label information)",
        figure,
        note=(
            f"{len(archs)} architectures, pairs scored on their common prefix of "
            f"n = {min(sizes)}-{max(sizes)} evaluation points; top-{top} eigenspace "
            f"overlap (label-free, mean cos^2 of principal angles) mean {overlap:.2f}"
        ),
        members=members or None,
    )


# ---------------------------------------------------------------- finding 7


def topr_claim(
    dataset: str,
    task: str,
    r: np.ndarray,
    clean: np.ndarray,
    robust: np.ndarray,
    labels: np.ndarray,
    figure: str,
) -> dict[str, Any]:
    """Row for finding 7 (robust features alone are not enough, supp. D.3).

    Args:
        dataset, task: dataset name and task.
        r: (R,) ascending numbers of kept features (last: all candidates).
        clean, robust: (L, R, m) clean / own-FGSM robust correctness of f'_r, each
            label set ranked and built with its own training labels (index 0: true
            labels, 1..P: permutations); evaluation labels are never permuted.
        labels: (m,) evaluation labels.
        figure: the top-r figure.
    """
    m = labels.size
    p_count = clean.shape[0] - 1
    clean, robust = _float(clean), _float(robust)
    note = (
        f"n = {m} evaluation points (disjoint from the ranking split); r in "
        f"{[int(x) for x in r]}; own-FGSM robust accuracy (true labels) "
        f"{np.round(robust[0].mean(-1), 2).tolist()}, clean "
        f"{np.round(clean[0].mean(-1), 2).tolist()}; majority rate "
        f"{core.majority_rate(labels):.2f}"
    )
    if task == "binary":

        def stat(w):
            return topr_sweet_spot(_acc(robust, w), _maj(labels, w))

        pooled = pool({"topr": (stat, m)})
        t_true = core.bootstrap_se(
            lambda idx: stat(np.bincount(idx, minlength=m).astype(float))[0],
            m,
            BOOT_REPS,
            BOOT_SEED,
        )
        statistic = (
            "T = max over r < r_max of own-FGSM robust accuracy of f'_r - max(majority "
            "rate, robust accuracy at r_max)"
        )
        parts = [
            _evidence(statistic + ", true vs permuted labels", pooled, "paired", m),
            core.Evidence(
                statistic + " > 0 (true labels)",
                pooled.measured,
                None,
                pooled.measured,
                t_true,
                f"bootstrap over evaluation points ({BOOT_REPS} resamples)",
                n=m,
            ),
        ]
        return core.claim_row(
            7,
            dataset,
            "Keeping the most robust features gives some robustness, with a sweet "
            "spot in r (supp. D.3, Fig. 5)",
            parts,
            "both parts >= 2 SE: (a) T(true) - mean T(P permuted training labels, "
            "each re-ranked) and (b) T(true) itself (an interior r beats both the "
            "full kernel and a constant predictor)",
            figure,
            note=note + f"; P = {p_count}",
        )

    def peak(w):
        return _acc(robust, w).max(axis=-1)

    pooled = pool({"topr": (peak, m)})

    def trade(w):
        return topr_tradeoff(_acc(clean[0], w), _acc(robust[0], w))

    b_val = float(trade(None))
    b_se = core.bootstrap_se(
        lambda idx: trade(np.bincount(idx, minlength=m).astype(float)),
        m,
        BOOT_REPS,
        BOOT_SEED,
    )
    parts = [
        _evidence(
            "max over r of own-FGSM robust accuracy of f'_r", pooled, "paired", m
        ),
        core.Evidence(
            "0.5 - max over r of min(clean, own-FGSM robust accuracy) (true labels)",
            b_val,
            None,
            b_val,
            b_se,
            f"bootstrap over evaluation points ({BOOT_REPS} resamples)",
            n=m,
        ),
    ]
    return core.claim_row(
        7,
        dataset,
        "No r gives non-trivial accuracy without giving up robustness (supp. D.3, "
        "Fig. 4)",
        parts,
        "both parts >= 2 SE: (a) the robust top-r kernels carry label information "
        "(max_r robust accuracy, true - mean of P permuted training labels) and (b) "
        "no r reaches clean and robust accuracy 0.5 at once",
        figure,
        note=note + f"; P = {p_count}",
    )


# ---------------------------------------------------------------- finding 14


def proposition1_claim(
    dataset: str, checks: Mapping[str, Mapping[str, float]], figure: str, tol=1e-8
) -> dict[str, Any]:
    """Row for finding 14 from `proposition1_check` results (arch -> dict)."""
    claim = (
        "Proposition 1: grad L(f_inf) = sum_i alpha_i grad L(f^(i)) (supp. D.1, Eq. "
        "32-33), and sum_i f^(i) = f_inf (Eq. 31)"
    )
    if not checks:
        return core.missing_row(14, dataset, claim, "no binary kernel scored", figure)
    g = max(c["grad_rel_err"] for c in checks.values())
    f = max(c["sum_rel_err"] for c in checks.values())
    return core.identity_row(
        14,
        dataset,
        claim,
        "max relative error over kernels of the gradient decomposition and of the "
        "feature sum (float64, all n features, against a linear solve)",
        max(g, f),
        tol,
        figure,
        note=(
            f"{len(checks)} kernels ({', '.join(checks)}): gradient relative error "
            f"{g:.2e}, feature-sum relative error {f:.2e}"
        ),
    )
