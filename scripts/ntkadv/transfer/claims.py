"""Claims rows of the transfer stage: finding 5 (docs/findings.md; supp. App. C).

Every row is a test against a same-run control (``ntkadv.claims.core``), computed
from the per-test-point arrays of the runs (`TransferRuns`), with standard errors
from a paired bootstrap over the b test points (every quantity of a statistic, the
measured value and its control alike, on the same resample) plus, where the
statistic is a mean over S seeds, the seed-to-seed spread: SE² = SE_boot² +
sd_seed² / S (the same test points enter every seed, so sd_seed is the spread due
to the initialisation alone). Such an SE carries the Satterthwaite df of the sum
(S − 1 when the seed spread dominates, `core.replicate_se`) and every row is judged
at the Student-t critical value of the level Φ(−2) (4.5 at df 2), not at 2.

* 5a (widest width, the alignment epoch = the evaluation epoch nearest
  ``transfer.align_epoch`` on a log scale, `alignment_epoch`): cosine of the NTK and
  net loss gradients of the same test point minus the cosine of the NTK gradient of
  point i with the net gradient of point i + 1 (`nulls.mismatched`), > 0; minus the
  same with the next point of the same class, > 0 (loss gradients share a
  class-dependent direction: on binary CIFAR two different airplanes have cosine
  ~0.9, so "near 1" alone does not show that the NTK predicts the net's gradient of
  *this* point); and the cosine minus ``criteria.min_cosine`` > 0 ("near 1"). All
  means over test points (with a partner) and seeds.
* 5b (widest width): the robust-accuracy comparison only where the attacks are
  informative: evaluation epochs at which the own-FGSM robust accuracy is below the
  random-sign accuracy (same ε) by >= 2 SE (paired over test points). An
  equivalence test (`core.equivalence_evidence`): the upper confidence bound of
  mean |acc_own − acc_ntk| (over informative epochs and seeds) must be below
  ``criteria.max_robust_gap``; and the NTK attack must be closer to the own attack
  than the random-sign control is, mean |acc_own − acc_random| − mean
  |acc_own − acc_ntk| > 0. No informative epoch: inconclusive, saying so.
* 5c (every width, a conjunction; an equivalence test, `core.equivalence_evidence`):
  the upper confidence bound of s̄, the across-seed standard deviation of the
  point-mean cosine averaged over the evaluation epochs, must be below
  ``criteria.max_seed_std``. SE² = SE_boot² (test points) + s̄²/(2(S − 1)) (the
  sampling error of a std of S seeds as an estimate of the initialisation's
  spread), Satterthwaite df from S − 1: three seeds bound σ only loosely (c = 4.5
  at df 2), and below 6 seeds the lower bound stays under 0, so the row cannot
  fail. Needs >= 2 seeds.
* 5d: epoch-mean cosine of the widest minus the narrowest width > 0 (the control is
  the less lazy net); SE² = SE_boot² (paired over test points) + seed_se², judged
  at the Student-t critical value of its Satterthwaite df (`core.combined_df`).

Robust accuracies count a point only if it is correct clean AND correct perturbed
(`ntkadv.transfer.experiment.run_transfer`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from ntkadv.claims import core

CLAIM_COSINE = (
    "loss gradients of the nets (different seeds) are all centred on the NTK loss "
    "gradient: cosine near 1 in the matched time window (supp. App. C)"
)
CLAIM_ROBUST = (
    "robust accuracy against the NTK's adversarial examples nearly coincides with "
    'that against the net\'s own ("blue and red lines overlap", supp. App. C)'
)
CLAIM_SEED = "the effect of the random seed is insignificant (supp. App. C)"
CLAIM_WIDTH = "agreement with the NTK is better at the larger width (lazier nets)"


@dataclasses.dataclass(frozen=True)
class TransferRuns:
    """Per-test-point arrays of every run of one dataset.

    Attributes:
        dataset: dataset name.
        widths: (W,) increasing widths.
        seeds: (S,) seeds.
        epochs: (E,) increasing evaluation epochs.
        cosine: (W, S, E, b) cos(∇ₓL_NTK(x_i), ∇ₓL_net(x_i)) (NaN: zero gradient).
        cosine_mismatched: (W, S, E, b) cos(∇ₓL_NTK(x_i), ∇ₓL_net(x_{i+1 mod b})).
        cosine_same_class: (W, S, E, b) the same with the next test point of the
            same class (NaN: no other point of the class).
        correct_clean: (W, S, E, b) bool, the net correct on the clean point.
        correct_own, correct_ntk, correct_random: (W, S, E, b) bool, correct clean
            AND on the own-FGSM / NTK-FGSM / random-sign perturbed point.
        seed_seconds: training seconds of one more seed (its nets of every width,
            mean over seeds; None if not recorded): whether the seeds that would
            resolve 5c fit this machine (`core.afford_note`).
    """

    dataset: str
    widths: np.ndarray
    seeds: np.ndarray
    epochs: np.ndarray
    cosine: np.ndarray
    cosine_mismatched: np.ndarray
    cosine_same_class: np.ndarray
    correct_clean: np.ndarray
    correct_own: np.ndarray
    correct_ntk: np.ndarray
    correct_random: np.ndarray
    seed_seconds: float | None = None

    @property
    def n_points(self) -> int:
        return int(self.cosine.shape[-1])


def alignment_epoch(epochs: Sequence[int], align_epoch: int) -> int:
    """Index of the evaluation epoch nearest `align_epoch` on a log scale."""
    epochs = np.asarray(epochs, dtype=np.float64)
    return int(np.argmin(np.abs(np.log(epochs) - math.log(max(align_epoch, 1)))))


def informative_epochs(own: np.ndarray, random: np.ndarray) -> np.ndarray:
    """Epochs at which the own attack beats the random-sign control by >= 2 SE.

    Args:
        own: (S, E, b) bool, correct clean AND on the own-FGSM example.
        random: (S, E, b) bool, correct clean AND on the random-sign perturbation.

    Returns:
        (E,) bool: D_e = mean_i d_ei > 0 and D_e >= 2 SE_e, with d_ei the seed mean
        of random − own at point i and SE_e = sd_i(d_ei) / √b (paired over points).
    """
    d = (np.asarray(random, float) - np.asarray(own, float)).mean(axis=0)  # (E, b)
    b = d.shape[-1]
    mean = d.mean(axis=-1)
    se = d.std(axis=-1, ddof=1) / math.sqrt(b) if b > 1 else np.full_like(mean, np.nan)
    return (mean > 0) & (mean >= core.Z_CRIT * se)


def _nanmean(x: np.ndarray, axis=None) -> np.ndarray:
    """Mean over finite entries (NaN where there are none), without warnings."""
    x = np.asarray(x, dtype=np.float64)
    ok = np.isfinite(x)
    total = np.where(ok, x, 0.0).sum(axis=axis)
    count = ok.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / np.where(count > 0, count, np.nan)


def _evidence(
    statistic: str,
    per_seed: Callable[[np.ndarray], np.ndarray],
    null_per_seed: Callable[[np.ndarray], np.ndarray] | None,
    effect_of: Callable[[float, float | None], float],
    b: int,
    reps: int,
    seed: int,
    what: str,
) -> core.Evidence:
    """Evidence of a seed-mean statistic: paired bootstrap over points + seed spread.

    Args:
        statistic: description of the statistic.
        per_seed: idx (b,) -> (S,) the statistic per seed on test points idx.
        null_per_seed: the same for the control (None: a fixed threshold).
        effect_of: (measured, null) -> signed effect.
        b: test points.
        reps, seed: bootstrap resamples and their seed.
        what: the quantity in the SE description.
    """
    full = np.arange(b)

    def effects(idx: np.ndarray) -> np.ndarray:
        m = per_seed(idx)
        nl = null_per_seed(idx) if null_per_seed is not None else None
        return np.array(
            [effect_of(m[s], None if nl is None else nl[s]) for s in range(m.size)]
        )

    measured_s = per_seed(full)
    null_s = null_per_seed(full) if null_per_seed is not None else None
    measured = float(np.mean(measured_s))
    null = None if null_s is None else float(np.mean(null_s))
    effect = effect_of(measured, null)
    se_boot = core.bootstrap_se(lambda idx: float(np.mean(effects(idx))), b, reps, seed)
    per_seed_effect = effects(full)
    n_seeds = per_seed_effect.size
    sd_seed = float(np.std(per_seed_effect, ddof=1)) if n_seeds > 1 else 0.0
    se, df = se_boot, None
    if n_seeds > 1:
        se, df = core.replicate_se(se_boot, sd_seed, n_seeds, 1 / n_seeds)
    method = (
        f"paired bootstrap over {b} test points ({reps} resamples) of {what}, "
        f"plus the spread over {n_seeds} seed(s): SE² = SE_boot² + sd_seed²/S "
        f"(SE_boot {se_boot:.3g}, sd_seed {sd_seed:.3g}; Satterthwaite df "
        f"{'inf' if df is None else f'{df:.3g}'})"
    )
    if n_seeds == 1:
        method += "; one seed: the initialisation is not in the SE"
    # the resolving size in the unit that dominates the SE: more test points
    # cannot shrink the initialisation's spread
    by_seeds = df is not None and sd_seed**2 / n_seeds > se_boot**2
    return core.Evidence(
        statistic,
        measured,
        null,
        effect,
        se,
        method,
        n=n_seeds if by_seeds else b,
        unit="seeds" if by_seeds else "test points",
        df=df,
        replicates=n_seeds if df is not None and not by_seeds else None,
    )


def _figure(dataset: str) -> str:
    return f"results/figures/transfer_curves_{dataset}.png"


def _width(w: int) -> str:
    exponent = math.log10(w)
    return f"1e{round(exponent)}" if np.isclose(exponent, round(exponent)) else str(w)


def cosine_row(
    runs: TransferRuns, min_cosine: float, align_epoch: int, reps: int, seed: int
) -> dict:
    """5a: gradient cosine at the alignment epoch vs mismatched pairs (any and same
    class) and min_cosine."""
    e = alignment_epoch(runs.epochs, align_epoch)
    cos = runs.cosine[-1, :, e, :]  # (S, b)
    mm = runs.cosine_mismatched[-1, :, e, :]
    mm_class = runs.cosine_same_class[-1, :, e, :]
    epoch, wide = int(runs.epochs[e]), _width(int(runs.widths[-1]))
    has_partner = np.isfinite(mm_class).all(axis=0)  # (b,) the same for every seed

    def mean_of(values, keep=None):
        def per_seed(idx):
            idx = idx if keep is None else idx[keep[idx]]
            return _nanmean(values[:, idx], axis=1)

        return per_seed

    what = "the point-mean cosine"
    stat = f"cosine of NTK and net loss gradients (supp. Eq. 30), width {wide}, epoch "
    n_class = int(has_partner.sum())
    parts = [
        _evidence(
            stat + f"{epoch}, same point vs mismatched pairs (point i vs i+1)",
            mean_of(cos),
            mean_of(mm),
            lambda m, n: m - n,
            runs.n_points,
            reps,
            seed,
            what + " minus the mismatched-pair cosine",
        ),
        _evidence(
            stat + f"{epoch}, same point vs the next point of the same class "
            f"({n_class} points with a partner)",
            mean_of(cos, has_partner),
            mean_of(mm_class, has_partner),
            lambda m, n: m - n,
            runs.n_points,
            reps,
            seed,
            what + " minus the same-class-pair cosine (points with a partner)",
        ),
        _evidence(
            stat + f"{epoch}, minus criteria.min_cosine = {min_cosine:g}",
            mean_of(cos),
            None,
            lambda m, n: m - min_cosine,
            runs.n_points,
            reps,
            seed,
            what,
        ),
    ]
    criterion = (
        f"at the widest width (m = {wide}) and the alignment epoch {epoch} (the "
        f"evaluation epoch nearest transfer.align_epoch = {align_epoch}): mean cosine "
        f"− mean mismatched-pair cosine (point i vs i+1) >= c SE AND mean cosine − "
        f"mean same-class-pair cosine (point i vs the next test point of its class) "
        f">= c SE AND mean cosine − {min_cosine:g} >= c SE (means over "
        f"{runs.n_points} test points and {runs.seeds.size} seeds; c = the "
        f"Student-t critical value at the Satterthwaite df of SE_boot² + the seed "
        f"spread, 2 with one seed)"
    )
    return core.claim_row(
        5, runs.dataset, CLAIM_COSINE, parts, criterion, _figure(runs.dataset)
    )


def robust_row(runs: TransferRuns, max_gap: float, reps: int, seed: int) -> dict:
    """5b: own- vs NTK-attack robust accuracy at the informative epochs (widest)."""
    own = runs.correct_own[-1].astype(np.float64)  # (S, E, b)
    ntk = runs.correct_ntk[-1].astype(np.float64)
    rnd = runs.correct_random[-1].astype(np.float64)
    informative = informative_epochs(own, rnd)
    wide = _width(int(runs.widths[-1]))
    epochs = runs.epochs[informative].tolist()
    criterion = (
        f"at the widest width (m = {wide}), over the informative epochs (own-FGSM "
        f"robust accuracy below the random-sign accuracy at the same ε by >= 2 SE, "
        f"paired over test points): the upper confidence bound mean |acc_own − "
        f"acc_ntk| + c SE < {max_gap:g} (equivalence within "
        f"transfer.criteria.max_robust_gap) AND mean |acc_own − acc_random| − mean "
        f"|acc_own − acc_ntk| >= c SE (the NTK attack is closer to the own attack "
        f"than random signs are); c = the Student-t critical value at the "
        f"Satterthwaite df of SE_boot² + the seed spread (2 with one seed); robust "
        f"= correct clean AND attacked"
    )
    note = (
        f"informative epochs {epochs} of {runs.epochs.tolist()}; "
        f"{runs.n_points} test points (accuracy resolution {1 / runs.n_points:.3g}), "
        f"{runs.seeds.size} seed(s)"
    )
    if not informative.any():
        ev = core.Evidence(
            "mean |acc_own − acc_ntk| over informative epochs",
            math.nan,
            math.nan,
            math.nan,
            math.nan,
            "none: no informative epoch",
        )
        note = (
            "no informative epoch: the own FGSM never lowers the robust accuracy "
            "below the random-sign accuracy by 2 SE, so agreement of the two attacks "
            "would be trivial; " + note
        )
        return core.claim_row(
            5, runs.dataset, CLAIM_ROBUST, ev, criterion, _figure(runs.dataset), note
        )

    def gap(a: np.ndarray, c: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        def per_seed(idx):
            acc_a = a[:, informative][:, :, idx].mean(axis=-1)
            acc_c = c[:, informative][:, :, idx].mean(axis=-1)
            return np.abs(acc_a - acc_c).mean(axis=-1)  # (S,)

        return per_seed

    stat = f"|acc_own − acc_ntk| of the net, width {wide}, mean over informative epochs"
    gap_ev = _evidence(
        stat,
        gap(own, ntk),
        None,
        lambda m, n: max_gap - m,
        runs.n_points,
        reps,
        seed,
        "the mean |acc_own − acc_ntk|",
    )
    parts = [
        core.equivalence_evidence(
            stat + " (transfer.criteria.max_robust_gap)",
            gap_ev.measured,
            gap_ev.se,
            max_gap,
            gap_ev.se_method,
            df=gap_ev.df,
            n=gap_ev.n,
            unit=gap_ev.unit,
            replicates=gap_ev.replicates,
        ),
        _evidence(
            stat + " vs |acc_own − acc_random| (random-sign control)",
            gap(own, ntk),
            gap(own, rnd),
            lambda m, n: n - m,
            runs.n_points,
            reps,
            seed,
            "the difference of the two mean gaps",
        ),
    ]
    return core.claim_row(
        5, runs.dataset, CLAIM_ROBUST, parts, criterion, _figure(runs.dataset), note
    )


def seed_row(runs: TransferRuns, max_std: float, reps: int, seed: int) -> dict:
    """5c: across-seed std of the point-mean cosine (mean over epochs), every width."""
    n_seeds = runs.seeds.size
    if n_seeds < 2:
        return core.missing_row(
            5,
            runs.dataset,
            CLAIM_SEED,
            f"{n_seeds} seed (transfer.seeds): the seed spread needs >= 2",
            _figure(runs.dataset),
        )
    b = runs.n_points
    parts = []
    factor = 1 / (2 * (n_seeds - 1))  # Var(s) ≈ σ²/(2(S − 1)) for a std of S draws
    for w, width in enumerate(runs.widths):
        cos = runs.cosine[w]  # (S, E, b)

        def spread(idx, cos=cos):
            means = _nanmean(cos[:, :, idx], axis=-1)  # (S, E)
            return float(np.nanmean(np.std(means, axis=0, ddof=1)))

        s_bar = spread(np.arange(b))
        se_boot = core.bootstrap_se(spread, b, reps, seed)
        se, df = core.replicate_se(se_boot, s_bar, n_seeds, factor)
        parts.append(
            core.equivalence_evidence(
                f"across-seed std of the point-mean cosine, width "
                f"{_width(int(width))}, mean over epochs",
                s_bar,
                se,
                max_std,
                f"SE² = SE_boot² + s̄²/(2(S − 1)): bootstrap over {b} test points "
                f"({reps} resamples; the same resample for every seed and epoch) "
                f"SE_boot {se_boot:.3g}, plus the sampling error of a std of "
                f"S = {n_seeds} seeds {s_bar * math.sqrt(factor):.3g} (df S − 1; "
                f"Satterthwaite df {'inf' if df is None else f'{df:.3g}'})",
                df=df,
                n=n_seeds,
                unit="seeds",
                unit_job_s=runs.seed_seconds,
            )
        )
    c = core.critical_value(n_seeds - 1)
    criterion = (
        f"at every width: the upper confidence bound s̄ + c SE < "
        f"transfer.criteria.max_seed_std = {max_std:g}, s̄ = mean over the "
        f"{runs.epochs.size} evaluation epochs of the across-seed std (ddof 1) of the "
        f"point-mean cosine, SE including the sampling error of a std of "
        f"{n_seeds} seeds, c = the Student-t critical value at its Satterthwaite df"
    )
    can_fail = c < 1 / math.sqrt(factor)
    note = (
        f"{n_seeds} seeds: the std bounds the initialisation's spread only loosely "
        f"(c = {c:.3g} at df {n_seeds - 1}, SE of a std ≈ "
        f"{math.sqrt(factor):.0%} of it)"
        + (
            ""
            if can_fail
            else "; at this number of seeds the lower bound s̄ − c SE is below 0, so "
            "the row can pass or be inconclusive but not fail"
        )
    )
    return core.claim_row(
        5, runs.dataset, CLAIM_SEED, parts, criterion, _figure(runs.dataset), note
    )


def width_row(runs: TransferRuns, reps: int, seed: int) -> dict:
    """5d: epoch-mean cosine of the widest minus the narrowest width."""
    if runs.widths.size < 2:
        return core.missing_row(
            5,
            runs.dataset,
            CLAIM_WIDTH,
            "one width (transfer.widths): the comparison needs two",
            _figure(runs.dataset),
        )
    b, n_seeds = runs.n_points, runs.seeds.size
    wide, narrow = runs.cosine[-1], runs.cosine[0]  # (S, E, b)

    def epoch_mean(cos, idx):
        return _nanmean(cos[:, :, idx], axis=-1).mean(axis=-1)  # (S,)

    def effect(idx):
        return float(epoch_mean(wide, idx).mean() - epoch_mean(narrow, idx).mean())

    full = np.arange(b)
    measured = float(epoch_mean(wide, full).mean())
    null = float(epoch_mean(narrow, full).mean())
    se_boot = core.bootstrap_se(effect, b, reps, seed)
    seed_means = epoch_mean(wide, full), epoch_mean(narrow, full)
    se_seed = core.seed_se(*seed_means)
    se_seed = 0.0 if not np.isfinite(se_seed) else se_seed
    df_seed = core.seed_df(*seed_means)
    names = (_width(int(runs.widths[-1])), _width(int(runs.widths[0])))
    method = (
        f"paired bootstrap over {b} test points ({reps} resamples), plus the seed "
        f"spread of each width (core.seed_se, {n_seeds} seeds per width): SE² = "
        f"SE_boot² + seed_se² (SE_boot {se_boot:.3g}, seed_se {se_seed:.3g})"
    )
    if n_seeds == 1:
        method += "; one seed: the initialisation is not in the SE"
    ev = core.Evidence(
        f"epoch-mean cosine of NTK and net loss gradients, width {names[0]} "
        f"(measured) vs width {names[1]} (null)",
        measured,
        null,
        measured - null,
        math.sqrt(se_boot**2 + se_seed**2),
        method,
        n=b,
        unit="test points",
        df=core.combined_df(se_boot, se_seed, df_seed),
    )
    criterion = (
        f"mean over the {runs.epochs.size} evaluation epochs, {b} test points and "
        f"{n_seeds} seeds of the cosine: width {names[0]} − width {names[1]} >= c SE "
        "(c = 2, or the Student-t critical value at the Satterthwaite df when the "
        "seed spread is part of the SE)"
    )
    return core.claim_row(
        5, runs.dataset, CLAIM_WIDTH, ev, criterion, _figure(runs.dataset)
    )


def transfer_claims(
    runs: Sequence[TransferRuns],
    criteria: Mapping[str, float],
    align_epoch: int,
    seed: int = 0,
):
    """Finding 5 (docs/findings.md): rows 5a-5d per dataset (see module docstring).

    Args:
        runs: one `TransferRuns` per transfer dataset (may be empty: no rows).
        criteria: {min_cosine, max_robust_gap, max_seed_std, bootstrap_reps}.
        align_epoch: transfer.align_epoch.
        seed: seed of the bootstrap resamples.

    Returns:
        pandas DataFrame with the columns of `core.COLUMNS`.
    """
    import pandas as pd

    reps = int(criteria["bootstrap_reps"])
    rows = []
    for r in sorted(runs, key=lambda r: r.dataset):
        rows.append(cosine_row(r, criteria["min_cosine"], align_epoch, reps, seed))
        rows.append(robust_row(r, criteria["max_robust_gap"], reps, seed))
        rows.append(seed_row(r, criteria["max_seed_std"], reps, seed))
        rows.append(width_row(r, reps, seed))
    return pd.DataFrame(rows, columns=core.COLUMNS)
