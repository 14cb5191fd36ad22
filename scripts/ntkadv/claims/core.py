"""One row builder and one verdict rule for every claim of docs/findings.md.

A claims row is a test that can fail. Each stage supplies, per finding and dataset,
one or more `Evidence` items: a statistic measured on the paper's setting, the same
statistic on a null control computed in the same run (permuted training labels on
the same cached kernel, a mismatched pair, a random-sign perturbation, a second
seed), the signed effect (positive supports the paper) and its standard error. The
verdict is the same everywhere (`verdict`):

* pass         effect >= 2 SE (and >= the stated minimum effect size),
* fail         effect <= -2 SE,
* inconclusive otherwise; the note says what would resolve it.

"2 SE" is a one-sided test at level Φ(−2) ≈ 2.3 % when the SE is known. An SE
estimated from a few seeds is itself noisy: with two seeds per regime it has 1-2
degrees of freedom, and effect / SE then exceeds 2 under the null in ~9-15 % of runs.
Evidence whose SE carries `df` degrees of freedom is therefore judged at the Student-t
critical value of the same level (`critical_value`: 4.5 at df 2, 2.9 at df 4);
bootstrap SEs over many evaluation points keep the plain 2.

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
#: Effect / SE needed for a verdict when the SE is known (large-sample).
Z_CRIT = 2.0


def critical_value(df: float | None = None) -> float:
    """Effect / SE needed for a verdict at the one-sided level Φ(−Z_CRIT).

    Args:
        df: degrees of freedom of the SE estimate (Welch–Satterthwaite for seed
            spreads); None or inf for a large-sample SE (bootstrap over points).

    Returns:
        Z_CRIT for a large-sample SE, else the Student-t quantile t_df(Φ(Z_CRIT))
        (13.9 at df 1, 4.5 at df 2, 2.9 at df 4); inf when df <= 0 or NaN.
    """
    if df is None or df == math.inf:
        return Z_CRIT
    if not df > 0:
        return math.inf
    from scipy.special import ndtr, stdtrit  # lazy: only seed-spread SEs need it

    return float(stdtrit(df, ndtr(Z_CRIT)))


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
        df: degrees of freedom of `se` when it is estimated from a few seeds
            (`seed_df`); None for a large-sample SE. Sets `critical_value`.
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
    df: float | None = None

    @property
    def z(self) -> float:
        """effect / SE (±inf for a zero SE with a nonzero effect, nan if undefined)."""
        if not np.isfinite(self.effect) or not np.isfinite(self.se):
            return math.nan
        if self.se == 0:
            return math.copysign(math.inf, self.effect) if self.effect else 0.0
        return self.effect / self.se

    @property
    def crit(self) -> float:
        """Effect / SE this evidence needs for a verdict (`critical_value`)."""
        return critical_value(self.df)

    @property
    def verdict(self) -> str:
        return verdict(self.effect, self.se, self.min_effect, self.df)


def verdict(
    effect: float, se: float, min_effect: float = 0.0, df: float | None = None
) -> str:
    """pass iff effect >= c·SE and >= min_effect; fail iff effect <= −c·SE.

    c = `critical_value(df)`: 2 for a large-sample SE, the Student-t quantile of
    the same one-sided level for an SE with `df` degrees of freedom.
    """
    if not (np.isfinite(effect) and np.isfinite(se)) or se < 0:
        return "inconclusive"
    c = critical_value(df)
    if effect >= c * se and effect >= min_effect and (effect > 0 or se > 0):
        return "pass"
    if effect <= -c * se and (effect < 0 or se > 0):
        return "fail"
    return "inconclusive"


def resolving_size(ev: Evidence, limit: int = 10**9) -> int | None:
    """Smallest n at which |effect| would reach the critical value (None if unknown).

    SE ∝ 1/√n; with a seed-spread SE its degrees of freedom grow with n as well,
    df(n) = df·(n − 1)/(n₀ − 1) (Welch's df for n seeds per regime, equal spreads,
    is 2(n − 1)), so the critical value falls from its small-sample size towards 2.
    """
    if ev.n is None or not ev.effect or not np.isfinite(ev.se) or ev.se <= 0:
        return None
    target = max(abs(ev.effect), ev.min_effect) if ev.effect > 0 else abs(ev.effect)
    large = int(math.ceil(ev.n * (Z_CRIT * ev.se / target) ** 2))
    if ev.df is None or ev.n < 2:
        return large

    def resolved(n: int) -> bool:
        df = ev.df * (n - 1) / (ev.n - 1)
        return critical_value(df) * ev.se * math.sqrt(ev.n / n) <= target

    lo, hi = ev.n, max(ev.n + 1, large)
    while not resolved(hi):  # the t quantile exceeds 2: search above `large`
        lo, hi = hi, 2 * hi
        if hi > limit:
            return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if resolved(mid) else (mid, hi)
    return hi


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
        finding: number in docs/findings.md.
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
    if bind.df is not None:
        notes.append(
            f"critical value {_fmt(bind.crit)} SE (Student t, df {_fmt(bind.df)}; "
            f"{Z_CRIT:g} SE in large samples)"
        )
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


def seed_df(values_a: Sequence[float], values_b: Sequence[float]) -> float:
    """Welch–Satterthwaite degrees of freedom of `seed_se` (NaN with < 2 per side).

    df = (v_a + v_b)² / (v_a²/(n_a − 1) + v_b²/(n_b − 1)) with v = var(ddof 1)/n;
    a side without spread (a fixed threshold) contributes nothing, so a seed mean
    against a threshold has n − 1. Between min(n_a, n_b) − 1 and n_a + n_b − 2.
    """
    a, b = np.asarray(values_a, float), np.asarray(values_b, float)
    if a.size < 2 or b.size < 2:
        return math.nan
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    den = va**2 / (a.size - 1) + vb**2 / (b.size - 1)
    return float((va + vb) ** 2 / den) if den > 0 else math.inf


def combined_df(se_known: float, se_seed: float, df_seed: float) -> float | None:
    """Satterthwaite df of SE² = se_known² + se_seed² (se_known: large-sample).

    None (large sample) when the seed part is absent; otherwise
    df = (se_known² + se_seed²)² / (se_seed⁴ / df_seed).
    """
    if not (se_seed > 0 and np.isfinite(df_seed)):
        return None
    return float((se_known**2 + se_seed**2) ** 2 / (se_seed**4 / df_seed))


def majority_rate(labels: np.ndarray, num_classes: int | None = None) -> float:
    """max_i P(y = i) on an evaluation set: the accuracy of a constant predictor."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size == 0:
        return math.nan
    return float(np.bincount(labels, minlength=num_classes or 0).max() / labels.size)
