"""Claims rows of the attack stage: docs/findings.md findings 4, 6 and 15.

Every row is built by `ntkadv.claims.core` from per-point correctness written by rule
attack_ntk (`pointwise.h5` of each attacked kernel, read by
`pointwise.read_pointwise`), so the standard errors are paired bootstraps over the
evaluation points. Conventions:

* Robust accuracy counts a point only if it is correct clean AND correct attacked
  (FGSM, PGD, the label-free first-order attacks, a random-sign perturbation).
* The null control of findings 4 and 6 is the same kernel machine trained on
  permuted training labels (same spectrum, only Y changes; `ntkadv.claims.nulls`),
  attacked with the same plan; the control of "the attack, not noise" is a
  random-sign perturbation of the same ε.
* With P permutations, SE² = SE_boot² + sd_perm²·(1 + 1/P): SE_boot from a paired
  bootstrap over evaluation points of measured − mean null, sd_perm the spread of
  the (pooled) statistic across the permutations. Pooling the attacked kernels of a
  dataset: effect = mean over kernels, SE_boot = mean of the kernels' SE_boot.
* Chance is the majority-class rate of the evaluation points.
* Finding 4's early time is chosen on one half of the evaluation points and used on
  the other (a class-stratified cross-fit, `pointwise.early_times`): choosing the
  time on the same points selects their luck, which robust accuracy (AND clean)
  inherits.

No jax here (the claims rule runs in envs/cpu.yaml).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ntkadv.attacks.pointwise import (
    BOOT_REPS,
    ROBUST_ATTACKS,
    USEFUL_GAP,
    Pointwise,
    early_times,
    early_vs_late,
)
from ntkadv.claims import core

#: Tolerances of the finding-15 identities (the CONV Jacobian cache is float32).
GRAD_TOL = 1e-4
SIGN_TOL = 1e-3
ROBUST_CONVENTION = "robust = correct clean AND correct attacked"

CLAIM_4 = (
    "Robust features are learned first: as t grows clean accuracy rises while "
    "robust accuracy falls; robust accuracy at small t > at t = inf (abstract; "
    "docs/findings.md finding 4, INFER)"
)
CLAIM_6 = (
    "The full kernel f_inf is accurate on clean data and near zero under FGSM and "
    "PGD (notebook configuration FC1, binary CIFAR, eps 8/255; docs/findings.md "
    "finding 6)"
)
CLAIM_15 = (
    "The binary FGSM direction of supp. Eq. 6 equals the autodiff BCE sign-gradient "
    "and the analytic input gradient of supp. Eq. 9 matches autodiff of the kernel "
    "predictor (docs/findings.md finding 15)"
)


# ---------------------------------------------------------------- evidence


def _mean_rows(x: np.ndarray, idx: np.ndarray) -> float:
    return float(np.mean(x[..., idx]))


def pooled_evidence(
    statistic: str,
    measured: Sequence[np.ndarray],
    null: Sequence[np.ndarray] | None,
    *,
    sign: float = 1.0,
    threshold: float | None = None,
    permutations: bool = True,
    seed: int = 0,
    what: str = "",
) -> core.Evidence:
    """Evidence pooled over kernels from per-point values (paired bootstrap SEs).

    Per kernel k: measured_k = mean of measured[k] (m,) over the points; the null is
    the mean over the rows of null[k] (P, m) (P permutations, or one control such as
    a random-sign perturbation); effect_k = sign·(measured_k − null_k), or
    threshold − measured_k when `null` is None. Pooled: means over kernels;
    SE_boot = mean of the kernels' bootstrap SEs of effect_k (the perfectly
    correlated bound); with `permutations`, SE² adds sd_perm²·(1 + 1/P), sd_perm
    the spread over p of the pooled statistic on permutation p.

    Args:
        statistic: the row's statistic in words.
        measured: one (m_k,) array per kernel.
        null: one (P, m_k) array per kernel, or None (fixed threshold).
        sign: +1 (measured above null supports the paper) or −1.
        threshold: the fixed value when `null` is None.
        permutations: the null rows are permutations (add sd_perm).
        seed: bootstrap seed.
        what: kernels pooled, for the SE method.
    """
    if not measured:
        nan = math.nan
        return core.Evidence(statistic, nan, nan, nan, nan, "no kernel")
    meas, nulls, effects, ses = [], [], [], []
    for k, a in enumerate(measured):
        a = np.asarray(a, np.float64)
        b = None if null is None else np.asarray(null[k], np.float64)
        meas.append(float(a.mean()))
        if b is None:
            nulls.append(math.nan)
            effects.append(float(threshold) - meas[-1])

            def stat(idx, a=a):
                return float(threshold) - _mean_rows(a, idx)
        else:
            nulls.append(float(b.mean()))
            effects.append(sign * (meas[-1] - nulls[-1]))

            def stat(idx, a=a, b=b):
                return sign * (_mean_rows(a, idx) - _mean_rows(b, idx))

        ses.append(core.bootstrap_se(stat, a.shape[0], BOOT_REPS, seed + k))
    se_boot = float(np.mean(ses))
    method = f"paired bootstrap over evaluation points ({BOOT_REPS} resamples)"
    if len(measured) > 1:
        method += f", mean of {len(measured)} kernels' SEs ({what})"
    se = se_boot
    if null is not None and permutations:
        p_count = int(np.asarray(null[0]).shape[0])
        per_perm = np.mean(
            [np.asarray(b, np.float64).mean(axis=1) for b in null], axis=0
        )  # (P,) pooled null statistic per permutation
        sd_perm = float(np.std(per_perm, ddof=1)) if p_count > 1 else math.nan
        se = math.sqrt(se_boot**2 + sd_perm**2 * (1 + 1 / p_count))
        method += (
            f"; + sd over {p_count} label permutations {sd_perm:.3g} "
            "(SE² = SE_boot² + sd_perm²(1 + 1/P))"
        )
    null_value = None if null is None else float(np.mean(nulls))
    return core.Evidence(
        statistic=statistic,
        measured=float(np.mean(meas)),
        null=null_value,
        effect=float(np.mean(effects)),
        se=se,
        se_method=method,
        n=int(min(np.asarray(a).shape[0] for a in measured)),
        unit="evaluation points per kernel",
    )


# ---------------------------------------------------------------- finding 4


def finding4_rows(
    pws: Sequence[Pointwise], figure_of: Mapping[str, str], seed: int = 0
) -> list[dict[str, Any]]:
    """One finding-4 row per dataset, pooled over its attacked kernels.

    Parts (a conjunction), for FGSM and PGD each, at the earliest attacked τ at
    which the true-label f_t is useful (`early_times`, cross-fitted):

    * robust(τ_early), true labels − the permuted-label machines at the same τ: the
      early predictor is robustly useful beyond what a label-blind machine gets (a
      near-constant early predictor has robust accuracy = a class prior, which the
      permuted machines share);
    * the drop robust(τ_early) − robust(∞), true minus permuted.
    """
    table = early_vs_late(pws, seed)
    rows = []
    for ds in dict.fromkeys(pw.dataset for pw in pws):
        kernels = [pw for pw in pws if pw.dataset == ds]
        parts, notes = [], []
        for attack in ROBUST_ATTACKS:
            sel = table[(table["dataset"] == ds) & (table["attack"] == attack)]
            have = sel[sel["reason"] == ""]
            for r in sel[sel["reason"] != ""].itertuples():
                notes.append(f"{r.arch} left out of {attack.upper()}: {r.reason}")
            meas_a, null_a, meas_b, null_b = [], [], [], []
            for r in have.itertuples():
                pw = next(p for p in kernels if p.arch == r.arch)
                rob = pw.robust(attack).astype(np.float64)
                j_of, _ = early_times(pw, attack, seed)
                pts = np.arange(pw.m)
                early = rob[:, j_of, pts]  # (S, m)
                meas_a.append(early[0])
                null_a.append(early[1:])
                meas_b.append(early[0] - rob[0, -1])
                null_b.append(early[1:] - rob[1:, -1])
                notes.append(
                    f"{r.arch} {attack.upper()}: τ_early {r.tau_early} (clean "
                    f"{r.clean_early:.3f} vs {r.clean_inf:.3f} at inf), robust "
                    f"{r.robust_early:.3f} -> {r.robust_inf:.3f} (null "
                    f"{r.null_robust_early:.3f} -> {r.null_robust_inf:.3f})"
                )
            archs = ", ".join(have["arch"])
            name = attack.upper()
            parts.append(
                pooled_evidence(
                    f"{name} robust accuracy (AND) at the earliest useful τ, true "
                    "labels vs permuted-label machines",
                    meas_a,
                    null_a,
                    seed=seed,
                    what=archs,
                )
            )
            parts.append(
                pooled_evidence(
                    f"{name} robust-accuracy drop robust(τ_early) − robust(inf), "
                    "true labels vs permuted",
                    meas_b,
                    null_b,
                    seed=seed + 100,
                    what=archs,
                )
            )
        if all(not np.isfinite(p.effect) for p in parts):
            notes.insert(0, "no attacked kernel has a useful early τ")
        rows.append(
            core.claim_row(
                4,
                ds,
                CLAIM_4,
                parts,
                "pooled over the attacked kernels: for FGSM and PGD, robust accuracy "
                f"at the earliest attacked τ with clean >= clean(inf) − {USEFUL_GAP} "
                "and clean 2 SE above the majority rate (chosen on the other half "
                "of the evaluation points: a class-stratified cross-fit) exceeds the "
                "permuted-label machines' at that τ, and the drop to t = inf "
                "exceeds theirs; each part effect >= 2 SE "
                f"({ROBUST_CONVENTION})",
                figure_of.get(ds, ""),
                "; ".join(notes),
            )
        )
    return rows


# ---------------------------------------------------------------- finding 6


def _inf_parts(
    kernels: Sequence[Pointwise],
    near_zero: float,
    seed: int,
    attacks: Sequence[str] = ("fgsm", "pgd"),
) -> tuple[list[core.Evidence], list[str]]:
    """Finding-6 parts at t = inf: useful, attack below random sign, PGD near zero."""
    notes = []
    for pw in kernels:
        c, rs = pw.clean()[:, -1], pw.robust("random_sign")[:, -1]
        accs = {
            "clean": c[0].mean(),
            "null clean": c[1:].mean(),
            "random sign": rs[0].mean(),
        }
        for a in attacks:
            if len(pw.taus) - 1 in pw.ran(a):
                accs[a.upper()] = pw.robust(a)[0, -1].mean()
        notes.append(
            f"{pw.arch}: " + ", ".join(f"{k} {v:.3f}" for k, v in accs.items())
        )
    archs = ", ".join(pw.arch for pw in kernels)
    parts = [
        pooled_evidence(
            "clean accuracy of f_inf, true labels vs permuted-label machines",
            [pw.clean()[0, -1].astype(float) for pw in kernels],
            [pw.clean()[1:, -1].astype(float) for pw in kernels],
            seed=seed,
            what=archs,
        )
    ]
    for a in attacks:
        have = [pw for pw in kernels if len(pw.taus) - 1 in pw.ran(a)]
        parts.append(
            pooled_evidence(
                f"{a.upper()} robust accuracy (AND) of f_inf vs a random-sign "
                "perturbation of the same eps (AND)",
                [pw.robust(a)[0, -1].astype(float) for pw in have],
                [pw.robust("random_sign")[0:1, -1].astype(float) for pw in have],
                sign=-1.0,
                permutations=False,
                seed=seed + 10,
                what=", ".join(pw.arch for pw in have),
            )
        )
    have = [pw for pw in kernels if len(pw.taus) - 1 in pw.ran("pgd")]
    parts.append(
        pooled_evidence(
            f"PGD robust accuracy (AND) of f_inf vs near_zero = {near_zero:g}",
            [pw.robust("pgd")[0, -1].astype(float) for pw in have],
            None,
            threshold=near_zero,
            seed=seed + 20,
            what=", ".join(pw.arch for pw in have),
        )
    )
    return parts, notes


def finding6_rows(
    pws: Sequence[Pointwise],
    notebook: Mapping[str, str] | None,
    near_zero: float,
    figure_of: Mapping[str, str],
    seed: int = 0,
) -> list[dict[str, Any]]:
    """The notebook-kernel row (if configured) and one pooled row per dataset.

    Parts: (a) clean accuracy − the permuted-label machines' (f_inf is useful);
    (b) random-sign accuracy − FGSM robust accuracy, and the same for PGD (the
    attack, not noise, destroys accuracy); (c) near_zero − PGD robust accuracy.
    """
    rows = []
    criterion = (
        "at t = inf: clean accuracy above the permuted-label machines', FGSM and "
        "PGD robust accuracy below a random-sign perturbation of the same eps, and "
        f"PGD robust accuracy below near_zero; each part effect >= 2 SE "
        f"({ROBUST_CONVENTION})"
    )
    if notebook:
        nb = [
            pw
            for pw in pws
            if pw.dataset == notebook["dataset"] and pw.arch == notebook["arch"]
        ]
        if nb:
            parts, notes = _inf_parts(nb, near_zero, seed)
            rows.append(
                core.claim_row(
                    6,
                    notebook["dataset"],
                    CLAIM_6,
                    parts,
                    f"notebook kernel {notebook['arch']}, " + criterion,
                    figure_of.get(notebook["dataset"], ""),
                    f"notebook kernel {notebook['arch']}, first {nb[0].m} test "
                    "points; " + "; ".join(notes),
                )
            )
        else:
            rows.append(
                core.missing_row(
                    6,
                    notebook["dataset"],
                    CLAIM_6,
                    f"notebook kernel {notebook['dataset']}/{notebook['arch']} "
                    "is not attacked",
                )
            )
    for ds in dict.fromkeys(pw.dataset for pw in pws):
        kernels = [pw for pw in pws if pw.dataset == ds]
        parts, notes = _inf_parts(kernels, near_zero, seed + 1, attacks=("pgd",))
        rows.append(
            core.claim_row(
                6,
                ds,
                CLAIM_6,
                parts,
                "every attacked kernel, pooled: " + criterion.replace("FGSM and ", ""),
                figure_of.get(ds, ""),
                "pooled over every attacked kernel; " + "; ".join(notes),
            )
        )
    return rows


# ---------------------------------------------------------------- finding 15


def finding15_rows(checks: pd.DataFrame, figure_of: Mapping[str, str]) -> list[dict]:
    """Two identity rows per dataset: relative errors and FGSM sign agreement."""
    if checks.empty:
        return [
            core.missing_row(
                15, "all", CLAIM_15, "no gradient checks (n_gradient_check 0)"
            )
        ]
    rows = []
    checks = checks.reset_index(drop=True)
    for ds, sub in checks.groupby("dataset", sort=False):
        err = sub[["grad_f_rel_err", "loss_grad_rel_err"]].max(axis=1)
        worst = sub.loc[err.idxmax()]
        n_pts = int(sub["n_points"].min())
        where = (
            f"{len(sub)} (kernel, t) checks on {n_pts} test points each over "
            f"{sub['arch'].nunique()} kernels; worst {worst['arch']} at τ "
            f"{worst['tau']:g}"
        )
        rows.append(
            core.identity_row(
                15,
                str(ds),
                CLAIM_15,
                "max relative error of ∇f_t (Eq. 9 cache) and ∇L (Eqs. 5/8) vs jax "
                "autodiff through kernel_fn",
                float(err.max()),
                GRAD_TOL,
                figure_of.get(str(ds), ""),
                where + " (tolerance 1e-4: the CONV Jacobian cache is float32)",
            )
        )
        rows.append(
            core.identity_row(
                15,
                str(ds),
                CLAIM_15,
                "1 − min FGSM sign agreement (closed form vs autodiff, components "
                "with |∂L| > 1e-6 max)",
                float(1.0 - sub["sign_agreement"].min()),
                SIGN_TOL,
                figure_of.get(str(ds), ""),
                where,
            )
        )
    return rows


def attack_claims(
    pws: Sequence[Pointwise],
    checks: pd.DataFrame,
    notebook: Mapping[str, str] | None,
    near_zero: float,
    seed: int = 0,
) -> pd.DataFrame:
    """Claims rows for findings 4, 6 and 15 (`core.COLUMNS`).

    Args:
        pws: per-point correctness of every attacked kernel
            (`pointwise.read_pointwise`).
        checks: results/tables/attacks_gradient_check.csv.
        notebook: config attacks.notebook ({dataset, arch}) or None.
        near_zero: robust accuracy below this is "near zero".
        seed: bootstrap seed.
    """
    time_fig = {
        pw.dataset: f"results/figures/attacks_robustness_vs_time_{pw.dataset}.png"
        for pw in pws
    }
    eps_fig = {
        pw.dataset: f"results/figures/attacks_accuracy_vs_eps_{pw.dataset}.png"
        for pw in pws
    }
    eps_fig |= {
        str(ds): f"results/figures/attacks_accuracy_vs_eps_{ds}.png"
        for ds in (checks["dataset"] if not checks.empty else [])
    }
    rows = (
        finding4_rows(pws, time_fig, seed)
        + finding6_rows(pws, notebook, near_zero, eps_fig, seed)
        + finding15_rows(checks, eps_fig)
    )
    return pd.DataFrame(rows, columns=core.COLUMNS)
