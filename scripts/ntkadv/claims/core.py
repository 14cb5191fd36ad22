"""One row builder and one verdict rule for every claim of experiments.md §3.

A claims row is a test that can fail. Each stage supplies, per finding and dataset,
one or more `Evidence` items: a statistic measured on the paper's setting, the same
statistic on a null control computed in the same run (permuted training labels on
the same cached kernel, a mismatched pair, a random-sign perturbation, a second
seed), the signed effect (positive supports the paper) and its standard error. The
verdict is the same everywhere (`verdict`):

* pass         effect >= 2 SE (and >= the stated minimum effect size),
* fail         effect <= -2 SE,
* inconclusive otherwise; the note says what would resolve it.

A claim with several parts (a conjunction, e.g. "accurate *and* non-robust") passes
if every part passes and fails if any part fails; the row reports the binding part
(the one with the smallest effect / SE). Findings 14 and 15 are numerical identities
(`identity_row`): the effect is the tolerance minus the error, with no null.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

#: Columns of every stage's claims table (results/tables/claims/<stage>.csv).
COLUMNS = [
    "finding",
    "dataset",
    "claim",
    "statistic",
    "measured",
    "null",
    "effect",
    "effect_se",
    "criterion",
    "verdict",
    "note",
    "figure",
]
VERDICTS = ("pass", "fail", "inconclusive")
#: Effect / SE needed for a verdict.
Z_CRIT = 2.0


@dataclasses.dataclass(frozen=True)
class Evidence:
    """One statistic against its null control.

    Attributes:
        statistic: what is measured (plain words, units).
        measured: the statistic on the paper's setting.
        null: the same statistic on the same-run null control (None: a fixed
            threshold or identity).
        effect: signed so that positive supports the paper (e.g. measured − null).
        se: standard error of `effect`.
        se_method: how `se` was obtained (bootstrap over what, how many seeds).
        min_effect: smallest effect that counts for the paper (>= 0).
        n: size behind the SE (evaluation points, seeds, ...), for the resolving
            size of an inconclusive row; None if it does not scale that way.
        unit: what `n` counts.
    """

    statistic: str
    measured: float
    null: float | None
    effect: float
    se: float
    se_method: str
    min_effect: float = 0.0
    n: int | None = None
    unit: str = "evaluation points"

    @property
    def z(self) -> float:
        """effect / SE (±inf for a zero SE with a nonzero effect, nan if undefined)."""
        if not np.isfinite(self.effect) or not np.isfinite(self.se):
            return math.nan
        if self.se == 0:
            return math.copysign(math.inf, self.effect) if self.effect else 0.0
        return self.effect / self.se

    @property
    def verdict(self) -> str:
        return verdict(self.effect, self.se, self.min_effect)


def verdict(effect: float, se: float, min_effect: float = 0.0) -> str:
    """pass iff effect >= 2 SE and >= min_effect; fail iff effect <= -2 SE."""
    if not (np.isfinite(effect) and np.isfinite(se)) or se < 0:
        return "inconclusive"
    if effect >= Z_CRIT * se and effect >= min_effect and (effect > 0 or se > 0):
        return "pass"
    if effect <= -Z_CRIT * se and (effect < 0 or se > 0):
        return "fail"
    return "inconclusive"


def resolving_size(ev: Evidence) -> int | None:
    """Size n at which |effect| would reach 2 SE if SE ∝ 1/√n (None if unknown)."""
    if ev.n is None or not ev.effect or not np.isfinite(ev.se) or ev.se <= 0:
        return None
    target = max(abs(ev.effect), ev.min_effect) if ev.effect > 0 else abs(ev.effect)
    return int(math.ceil(ev.n * (Z_CRIT * ev.se / target) ** 2))


def combine(parts: Sequence[Evidence]) -> tuple[str, Evidence]:
    """Verdict of a conjunction of parts and its binding part (smallest z)."""
    if not parts:
        raise ValueError("a claim needs at least one piece of evidence")
    verdicts = [p.verdict for p in parts]
    if "fail" in verdicts:
        status = "fail"
    elif all(v == "pass" for v in verdicts):
        status = "pass"
    else:
        status = "inconclusive"
    zs = [p.z if np.isfinite(p.z) else -math.inf for p in parts]
    return status, parts[int(np.argmin(zs))]


def _fmt(x: float | None) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "" if x is None else str(x)
    return f"{x:.4g}"


def claim_row(
    finding: int,
    dataset: str,
    claim: str,
    parts: Evidence | Sequence[Evidence],
    criterion: str,
    figure: str,
    note: str = "",
) -> dict[str, Any]:
    """One claims row from its evidence (see the module docstring).

    Args:
        finding: number in experiments.md §3.
        dataset: dataset (config name) or "all".
        claim: the paper's words.
        parts: one `Evidence`, or the parts of a conjunction.
        criterion: the test in words (what effect, which null, the 2-SE rule).
        figure: the figure file the row refers to (results/figures/...).
        note: context; for inconclusive rows the resolving size is appended.
    """
    parts = [parts] if isinstance(parts, Evidence) else list(parts)
    status, bind = combine(parts)
    notes = [note] if note else []
    if len(parts) > 1:
        notes.append(
            "parts: "
            + "; ".join(
                f"{p.statistic}: {_fmt(p.effect)} ± {_fmt(p.se)} ({p.verdict})"
                for p in parts
            )
        )
    notes.append(f"SE: {bind.se_method}")
    if status == "inconclusive":
        need = resolving_size(bind)
        if need is not None:
            notes.append(f"to resolve: ~{need} {bind.unit} (SE ∝ 1/√n; now {bind.n})")
        elif bind.effect == 0 and bind.se == 0:
            notes.append(
                f"unresolvable at these settings: {bind.statistic} is "
                f"{_fmt(bind.measured)} on the claim and on its null at every "
                "evaluation point (a floor or ceiling; more points cannot move it)"
            )
        else:
            notes.append("to resolve: more evaluation points or seeds")
    return {
        "finding": int(finding),
        "dataset": dataset,
        "claim": claim,
        "statistic": bind.statistic,
        "measured": float(bind.measured),
        "null": np.nan if bind.null is None else float(bind.null),
        "effect": float(bind.effect),
        "effect_se": float(bind.se),
        "criterion": criterion,
        "verdict": status,
        "note": " | ".join(notes),
        "figure": figure,
    }


def identity_row(
    finding: int,
    dataset: str,
    claim: str,
    statistic: str,
    error: float,
    tolerance: float,
    figure: str = "",
    note: str = "",
) -> dict[str, Any]:
    """A numerical identity: pass iff error <= tolerance (effect = tol − error)."""
    ev = Evidence(statistic, error, None, tolerance - error, 0.0, "exact (no sampling)")
    row = claim_row(
        finding,
        dataset,
        claim,
        ev,
        f"error <= {tolerance:g}",
        figure,
        note,
    )
    row["note"] = note
    return row


def missing_row(
    finding: int, dataset: str, claim: str, what: str, figure: str = ""
) -> dict[str, Any]:
    """An inconclusive row for a finding whose runs are not in this configuration."""
    return {
        "finding": int(finding),
        "dataset": dataset,
        "claim": claim,
        "statistic": "",
        "measured": np.nan,
        "null": np.nan,
        "effect": np.nan,
        "effect_se": np.nan,
        "criterion": "",
        "verdict": "inconclusive",
        "note": f"not run: {what}",
        "figure": figure,
    }


# ---------------------------------------------------------------- standard errors


def bootstrap(
    statistic: Callable[[np.ndarray], float],
    n: int,
    reps: int = 1000,
    seed: int = 0,
) -> np.ndarray:
    """Bootstrap replicates of `statistic(idx)` over n evaluation points.

    Args:
        statistic: idx (n,) int resample -> float (compute every quantity of the
            statistic, measured and null alike, on the same resample: paired).
        n: number of evaluation points.
        reps: resamples.
        seed: seed of the resampling.

    Returns:
        (reps,) replicates (NaN where the statistic is undefined).
    """
    rng = np.random.default_rng(seed)
    out = np.empty(reps)
    for r in range(reps):
        out[r] = statistic(rng.integers(0, n, n))
    return out


def bootstrap_se(
    statistic: Callable[[np.ndarray], float], n: int, reps: int = 1000, seed: int = 0
) -> float:
    """Standard deviation of the finite bootstrap replicates (NaN if < 10 finite)."""
    draws = bootstrap(statistic, n, reps, seed)
    draws = draws[np.isfinite(draws)]
    return float(np.std(draws, ddof=1)) if draws.size >= 10 else math.nan


def seed_se(values_a: Sequence[float], values_b: Sequence[float]) -> float:
    """SE of mean(a) − mean(b) from seed-to-seed spread (NaN with < 2 per side).

    The noise floor of a regime difference: each side's variance is its across-seed
    sample variance (ddof 1).
    """
    a, b = np.asarray(values_a, float), np.asarray(values_b, float)
    if a.size < 2 or b.size < 2:
        return math.nan
    return float(math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size))


def majority_rate(labels: np.ndarray, num_classes: int | None = None) -> float:
    """max_i P(y = i) on an evaluation set: the accuracy of a constant predictor."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size == 0:
        return math.nan
    return float(np.bincount(labels, minlength=num_classes or 0).max() / labels.size)
