"""One row builder and one verdict rule for every claim of docs/findings.md.

A claims row is a test that can fail. Each stage supplies, per finding and dataset,
one or more `Evidence` items: a statistic measured on the paper's setting, the same
statistic on a null control computed in the same run (permuted training labels on
the same cached kernel, a mismatched pair, a random-sign perturbation, a second
seed), the signed effect (positive supports the paper) and its standard error. The
verdict is the same everywhere (`verdict`), with c the critical value of the SE:

* pass         effect >= c·SE (and >= the stated minimum effect size),
* fail         effect <= −c·SE,
* inconclusive otherwise; the note says what would resolve it.

The level is one-sided Φ(−2) ≈ 2.3 % throughout (`critical_value`):

* c = 2 ("2 SE") for a large-sample SE: a bootstrap over evaluation points;
* c = the Student-t quantile at the SE's degrees of freedom `df` when the SE contains
  a spread over k replicates (label permutations, seeds, nets): k − 1 for a plain
  std over k (`replicate_se`), Welch–Satterthwaite for a difference of two seed
  means (`seed_df`), Satterthwaite for SE² = SE_boot² + spread² (`combined_df`).
  With 2 permutations or seeds (df 1) c is 13.9, with 3 (df 2) 4.5, with 5 (df 4)
  2.9: effect / SE of a 2-replicate spread exceeds 2 in ~15 % of null runs, and
  exceeds c in 2.3 %.
* An equivalence claim ("the seed effect is insignificant", "the two attacks
  agree within a margin") passes only when the upper confidence bound value + c·SE
  is below the margin, fails when the lower bound value − c·SE is above it
  (`equivalence_evidence`): a point estimate inside the margin is not enough.

A claim with several parts (a conjunction, e.g. "accurate *and* non-robust") passes
if every part passes and fails if any part fails; the row reports the binding part
(the one with the smallest effect / c·SE). A row that pools several members
(kernels, architectures, pairs) takes their own evidence as well (`claim_row`'s
`members`): it fails if any member fails at its own SE, whatever the pooled effect,
and its note lists every member. With M member tests (every part of every member)
a member fails at the family-wise critical value, the one-sided level Φ(−2) / M
(Bonferroni: 2 SE for one test, 3.1 for 24, 3.35 for 56), so that a row of many
true members does not fail by chance: at 2 SE each, one of 56 true members falls
below −2 SE in ~70 % of runs (the CIFAR-2 chance-corrected f3 row did, at 2.5 SE,
and flipped to inconclusive under another subset draw). Findings 14 and 15 are
numerical identities (`identity_row`): the effect is the tolerance minus the
error, with no null.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
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
#: Job-seconds (one core's wall time of the jobs) an inconclusive row's resolving
#: size may add and still count as affordable here: 10 job-minutes, ~5 min on the
#: 2-core machine the default (laptop) run is timed on (README command <= 45 min).
AFFORD_JOB_S = 600.0


def critical_value(df: float | None = None, tests: int = 1) -> float:
    """Effect / SE needed for a verdict at the one-sided level Φ(−Z_CRIT) / tests.

    Args:
        df: degrees of freedom of the SE estimate (Welch–Satterthwaite for seed
            spreads); None or inf for a large-sample SE (bootstrap over points).
        tests: number of tests the level is shared by (Bonferroni; members of a
            pooled row, `claim_row`); 1 for a single test.

    Returns:
        Z_CRIT for a single large-sample SE, else the normal or Student-t quantile
        at 1 − Φ(−Z_CRIT) / tests (13.9 at df 1, 4.5 at df 2, 2.9 at df 4 for one
        test; 3.35 for 56 large-sample tests); inf when df <= 0 or NaN.
    """
    if tests > 1:
        from scipy.special import ndtr, ndtri, stdtrit

        level = 1.0 - ndtr(-Z_CRIT) / tests
        if df is None or df == math.inf:
            return float(ndtri(level))
        return float(stdtrit(df, level)) if df > 0 else math.inf
    if df is None or df == math.inf:
        return Z_CRIT
    if not df > 0:
        return math.inf
    from scipy.special import ndtr, stdtrit  # lazy: only seed-spread SEs need it

    return float(stdtrit(df, ndtr(Z_CRIT)))


def fails_at(ev: Evidence, tests: int) -> bool:
    """Whether `ev` fails at the family-wise critical value of `tests` tests."""
    if not (np.isfinite(ev.effect) and np.isfinite(ev.se)) or ev.se < 0:
        return False
    c = critical_value(ev.df, tests)
    return ev.effect <= -c * ev.se and (ev.effect < 0 or ev.se > 0)


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
        df: degrees of freedom of `se` when it contains a spread over a few
            replicates (`seed_df`, `replicate_se`, `combined_df`); None for a
            large-sample SE. Sets `critical_value`.
        replicates: the number of replicates behind `df` when they are not what
            `n` counts (e.g. P label permutations of an SE over evaluation points):
            `resolving_size` then keeps `df` fixed as n grows. None: `df` (if any)
            grows with n (n counts the seeds).
        margin: the equivalence margin of an `equivalence_evidence` (the note
            states the upper confidence bound against it); None otherwise.
        unit_job_s: job-seconds (single-core wall time, as the jobs record it) one
            more of `unit` costs at the run's sizes, so
            that an inconclusive row says whether its resolving size fits this
            machine (`afford_note`); None: the stage does not know the cost.
        se_fixed: the part of `se` that more of `unit` do not shrink (0 <= se_fixed
            <= se), e.g. the spread of a feature statistic over training-label
            permutations: it comes from the labelling (one orientation draw
            sign(v_iᵀY) per eigenfeature), not from the evaluation points.
            `resolving_size` scales only √(se² − se_fixed²) as 1/√n and finds no
            n when the fixed part alone keeps |effect| below the critical value.
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
    replicates: int | None = None
    margin: float | None = None
    unit_job_s: float | None = None
    se_fixed: float = 0.0

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

    @property
    def strength(self) -> float:
        """effect / (c·SE): >= 1 passes, <= −1 fails (nan if undefined)."""
        c, z = self.crit, self.z
        if not np.isfinite(c):  # df <= 0: no verdict possible
            return 0.0 if np.isfinite(z) else math.nan
        return z / c


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
    """Smallest n at which |effect| would reach the critical value (None if unknown
    or if no n does).

    SE(n)² = (SE² − se_fixed²)·n₀/n + se_fixed²: the part of the SE that more
    units do not shrink (`Evidence.se_fixed`, e.g. a label-permutation spread)
    stays, so an effect below c·se_fixed has no resolving size. With a seed-spread
    SE its degrees of freedom grow with n as well, df(n) = df·(n − 1)/(n₀ − 1)
    (Welch's df for n seeds per regime, equal spreads, is 2(n − 1)), so the
    critical value falls from its small-sample size towards 2.
    """
    if ev.n is None or not ev.effect or not np.isfinite(ev.se) or ev.se <= 0:
        return None
    if 0 < ev.effect < ev.min_effect:  # below the claim's size: no n passes it
        return None
    target = max(abs(ev.effect), ev.min_effect) if ev.effect > 0 else abs(ev.effect)
    fixed = min(max(float(ev.se_fixed), 0.0), ev.se)
    shrinking = ev.se**2 - fixed**2

    def need_at(c: float) -> int | None:
        """Smallest n with c·SE(n) <= target at a fixed critical value c."""
        room = (target / c) ** 2 - fixed**2
        if room <= 0 or not np.isfinite(c):
            return None
        return max(1, int(math.ceil(ev.n * shrinking / room)))

    if ev.df is None or ev.n < 2:
        return need_at(Z_CRIT)
    if ev.replicates is not None:  # df from replicates that do not grow with n
        need = need_at(ev.crit)
        return need if need is not None and need <= limit else None

    def resolved(n: int) -> bool:
        df = ev.df * (n - 1) / (ev.n - 1)
        return critical_value(df) * math.sqrt(shrinking * ev.n / n + fixed**2) <= target

    large = need_at(Z_CRIT)
    if large is None:  # not even at the large-sample critical value
        return None
    lo, hi = ev.n, max(ev.n + 1, large)
    while not resolved(hi):  # the t quantile exceeds 2: search above `large`
        lo, hi = hi, 2 * hi
        if hi > limit:
            return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if resolved(mid) else (mid, hi)
    return hi


def afford_note(ev: Evidence, need: int) -> str:
    """Whether growing `ev.n` to `need` fits this machine (`AFFORD_JOB_S`), from
    the stage's cost per unit; empty when the cost is unknown."""
    if ev.unit_job_s is None or ev.n is None:
        return ""
    extra = max(0, need - ev.n) * ev.unit_job_s
    fits = (
        "affordable on this machine"
        if extra <= AFFORD_JOB_S
        else f"not affordable in the default run (> {AFFORD_JOB_S / 60:.0f} job-min)"
    )
    return (
        f"; cost ~{ev.unit_job_s:.0f} job-s per {ev.unit.split(' per ')[0].rstrip('s')}"
        f" as this run recorded it: +{extra / 60:.0f} job-min, {fits}"
    )


def combine(parts: Sequence[Evidence]) -> tuple[str, Evidence]:
    """Verdict of a conjunction of parts and its binding part (smallest z / c)."""
    if not parts:
        raise ValueError("a claim needs at least one piece of evidence")
    verdicts = [p.verdict for p in parts]
    if "fail" in verdicts:
        status = "fail"
    elif all(v == "pass" for v in verdicts):
        status = "pass"
    else:
        status = "inconclusive"
    zs = [p.strength if np.isfinite(p.strength) else -math.inf for p in parts]
    return status, parts[int(np.argmin(zs))]


def _parts(ev: Evidence | Sequence[Evidence]) -> list[Evidence]:
    return [ev] if isinstance(ev, Evidence) else list(ev)


def _members_verdict(
    members: Mapping[str, Evidence | Sequence[Evidence]],
) -> tuple[list[str], tuple[str, Evidence] | None, int]:
    """Per-member verdict texts, the worst failing member (None if none fails) and
    the number M of member tests.

    A member fails when one of its parts fails at the family-wise critical value
    of all M parts of all members (`critical_value(df, M)`); the text gives each
    member's binding part and its own verdict, marked when it fails only at its
    own (single-test) level.
    """
    texts, worst = [], None
    tests = sum(len(_parts(ev)) for ev in members.values())
    for name, ev in members.items():
        parts = _parts(ev)
        if not parts:
            continue
        status, bind = combine(parts)
        failing = [p for p in parts if fails_at(p, tests)]
        if status == "fail" and not failing:
            status = "fails at its own SE only, not family-wise"
        df = f", df {_fmt(bind.df)}" if bind.df is not None else ""
        texts.append(f"{name}: {_fmt(bind.effect)} ± {_fmt(bind.se)}{df} ({status})")
        if failing:
            part = min(failing, key=lambda p: p.strength)
            if worst is None or part.strength < worst[1].strength:
                worst = (name, part)
    return texts, worst, tests


def _fmt(x: float | None) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "" if x is None else str(x)
    return f"{x:.4g}"


def _resolve_note(bind: Evidence) -> str:
    """What would decide an inconclusive row: its resolving size (and whether this
    machine affords it), or why no size can.

    With a fixed SE part (`Evidence.se_fixed`, an upper bound of what more units
    leave) the note gives both ends: the size if that part stays (or that none
    exists) and the size if it shrank with the units as well.
    """
    need = resolving_size(bind)
    low = (
        resolving_size(dataclasses.replace(bind, se_fixed=0.0))
        if bind.se_fixed > 0
        else None
    )
    if need is None and low is not None:
        return (
            f"to resolve: no number of {bind.unit} if the spread over the null "
            f"draws ({_fmt(bind.se_fixed)} of the SE) stays, as a property of the "
            f"labelling; ~{low} if it shrinks with them as well (now {bind.n})"
        )
    if need is not None:
        fixed = (
            f", critical value held at df {_fmt(bind.df)} of {bind.replicates} "
            "replicates (more replicates lower it towards 2)"
            if bind.replicates is not None and bind.df is not None
            else ""
        )
        scaling = (
            f"SE² − {_fmt(bind.se_fixed)}² ∝ 1/n: the null draws' spread stays; "
            f"~{low} if it shrinks as well"
            if low is not None
            else "SE ∝ 1/√n"
        )
        return (
            f"to resolve: ~{need} {bind.unit} ({scaling}; now {bind.n}{fixed})"
            + afford_note(bind, need)
        )
    if 0 < bind.effect < bind.min_effect:
        return (
            f"unresolvable by size: the effect {_fmt(bind.effect)} is below the "
            f"claim's minimum effect {_fmt(bind.min_effect)}, so no n passes it "
            "(only a negative effect could fail it)"
        )
    if bind.effect == 0 and bind.se == 0:
        return (
            f"unresolvable at these settings: {bind.statistic} is "
            f"{_fmt(bind.measured)} on the claim and on its null at every "
            "evaluation point (a floor or ceiling; more points cannot move it)"
        )
    return "to resolve: more evaluation points or seeds"


def eps_tag(eps: float, paper_eps: float) -> str:
    """Claim-text suffix of a row computed at an extra ℓ∞ budget (datasets.<d>.
    extra_eps) beside the paper's: the same finding, statistic, control and SE rule
    at another ε, e.g. " [at ε = 0.075, off the paper-ε floor; the paper's ε is
    0.3]"."""
    return (
        f" [at ε = {eps:.4g}, off the paper-ε floor; the paper's ε is {paper_eps:.4g}]"
    )


#: Note of a row at an extra ε (its figure shows the paper's ε).
EXTRA_EPS_NOTE = (
    "extra-ε row (datasets.<d>.extra_eps): same statistic, control and SE rule as "
    "the paper-ε row, on the same kernels and evaluation points; the figure shows "
    "the paper's ε"
)


def claim_row(
    finding: int,
    dataset: str,
    claim: str,
    parts: Evidence | Sequence[Evidence],
    criterion: str,
    figure: str,
    note: str = "",
    members: Mapping[str, Evidence | Sequence[Evidence]] | None = None,
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
        members: for a row whose `parts` pool several members (kernels,
            architectures, pairs): each member's own evidence (same parts, its own
            SE). The row fails if any member fails at the family-wise critical
            value of all member tests (`_members_verdict`), whatever the pooled
            verdict (a pooled effect must not hide a failing member); the row then
            reports the worst failing member's failing part. Every member's
            verdict is in the note.
    """
    parts = _parts(parts)
    status, bind = combine(parts)
    statistic = bind.statistic
    notes = [note] if note else []
    if members:
        texts, worst, tests = _members_verdict(members)
        pooled = status
        if worst is not None:
            status, bind = "fail", worst[1]
            statistic = f"{bind.statistic} [member {worst[0]}]"
        crit = critical_value(None, tests)
        notes.append(
            f"pooled verdict {pooled}; row verdict {status} (a row fails if any "
            f"member fails at its own SE, family-wise over {tests} member tests: "
            f"{_fmt(crit)} SE for a large-sample SE); members: " + "; ".join(texts)
        )
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
    if bind.margin is not None:
        lo, hi = confidence_bounds(bind.measured, bind.se, bind.df)
        notes.append(
            f"equivalence: {_fmt(bind.measured)}, confidence bounds [{_fmt(lo)}, "
            f"{_fmt(hi)}] (± {_fmt(bind.crit)} SE) vs margin {_fmt(bind.margin)}: "
            "pass needs the upper bound below the margin"
        )
    if status == "inconclusive":
        notes.append(_resolve_note(bind))
    return {
        "finding": int(finding),
        "dataset": dataset,
        "claim": claim,
        "statistic": statistic,
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


def confidence_bounds(
    value: float, se: float, df: float | None = None
) -> tuple[float, float]:
    """One-sided bounds value ∓ c·SE, each at level Φ(−2) (`critical_value`)."""
    c = critical_value(df)
    return value - c * se, value + c * se


def equivalence_evidence(
    statistic: str,
    value: float,
    se: float,
    margin: float,
    se_method: str,
    df: float | None = None,
    **kw: Any,
) -> Evidence:
    """Evidence for an equivalence claim "value is below margin" (e.g. |Δ| small).

    effect = margin − value with the SE of value, so that the common rule reads:
    pass iff the upper confidence bound value + c·SE < margin (within the margin
    at level Φ(−2)), fail iff the lower bound value − c·SE > margin, inconclusive
    otherwise, with c = `critical_value(df)`. A point estimate inside the margin
    with a wide interval (a spread over 3 seeds bounds σ only loosely: c = 4.5 at
    df 2) is inconclusive, not a pass.

    Args:
        statistic: what is measured (the margin is appended).
        value: the measured quantity (e.g. a std over seeds, a mean |gap|).
        se: its standard error.
        margin: the equivalence margin (the largest value that counts as equal).
        se_method: how `se` was obtained.
        df: degrees of freedom of `se` (None: large sample).
        **kw: further `Evidence` fields (n, unit, replicates).
    """
    return Evidence(
        f"{statistic}, vs margin {margin:g}",
        float(value),
        None,
        float(margin) - float(value),
        float(se),
        se_method,
        df=df,
        margin=float(margin),
        **kw,
    )


def replicate_se(
    se_known: float, sd: float, k: int, factor: float
) -> tuple[float, float | None]:
    """SE and df of SE² = se_known² + factor·sd², sd a std (ddof 1) over k replicates.

    The spread term has k − 1 degrees of freedom; the total its Satterthwaite df
    (`combined_df`): k − 1 when se_known is 0, growing to inf (None) as se_known
    dominates. Label permutations (effect = measured − mean of P nulls): factor
    1 + 1/P; a mean over S seeds: factor 1/S.

    The df is a plug-in (it uses sd itself), so with very few replicates and a
    bootstrap part of similar size the level is only approximate: simulated
    false-pass rates at P = 2 permutations are 6.7 %, 4.3 % and 2.5 % for
    se_known = 0.3, 1 and 3 times the permutation sd (12 %, 5.3 % and 2.8 % at
    2 SE), ~3 % at P = 3-4, and exactly 2.3 % when the spread is all of the SE;
    df = k − 1 (the spread alone) would be conservative at every ratio
    (tests/unit/claims/test_claims_core.py).

    Args:
        se_known: large-sample part (bootstrap over evaluation points), >= 0.
        sd: std over the k replicates.
        k: number of replicates.
        factor: variance factor of the spread term.

    Returns:
        (SE, df); (nan, None) with k < 2 or a non-finite sd. A zero sd (k equal
        replicates, e.g. a discrete statistic) keeps df = k − 1: it does not show
        that the spread is negligible (the plug-in df would be inf).
    """
    if k < 2 or not np.isfinite(sd):
        return math.nan, None
    se_rep = math.sqrt(factor) * sd
    se = math.sqrt(se_known**2 + se_rep**2)
    if se_rep == 0:
        return se, float(k - 1)
    return se, combined_df(se_known, se_rep, k - 1)


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
