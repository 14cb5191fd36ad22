"""Claims rows of the kernel-dynamics stage: findings 8-13 of experiments.md §3.

Every function takes the measured series of one dataset (dicts of NumPy arrays as
written by the rules ``measure_kernel_dynamics`` and ``train_*_network``) and returns
one row ``{finding, description, paper_claim, measured, criterion, status}``; the
status is 'pass', 'fail' or 'inconclusive' (a regime or run is missing, or the
evidence is mixed). Criteria are deliberately simple, stated in each row, and are
decided on a single seed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from ntkadv.dynamics.measures import settle_epoch

Series = Mapping[str, np.ndarray]


def _row(finding, description, paper_claim, measured, criterion, status) -> dict:
    return {
        "finding": finding,
        "description": description,
        "paper_claim": paper_claim,
        "measured": measured,
        "criterion": criterion,
        "status": status,
    }


def _missing(finding, description, paper_claim, criterion, what) -> dict:
    return _row(
        finding, description, paper_claim, f"not run: {what}", criterion, "inconclusive"
    )


def _listing(label: str, values: Mapping, fmt: str = ".3g", prefix: str = "") -> str:
    """'label: k1=v1, k2=v2' with each value formatted by `fmt` (the measured text)."""
    return f"{label}: " + ", ".join(f"{prefix}{k}={v:{fmt}}" for k, v in values.items())


def _tail(x: np.ndarray, frac: float = 0.1) -> float:
    """Mean over the last `frac` of epochs (at least one)."""
    x = np.asarray(x, float)
    return float(np.mean(x[-max(1, int(round(frac * (len(x) - 1)))) :]))


def lazy_earlier(dataset: str, measures: Mapping[str, Series], fraction=0.9) -> dict:
    """Finding 8: the kernel settles earlier under PGD than under standard training.

    Two settling epochs per regime: the first epoch at which the paper's normalised
    radius ||K_t - K_0|| / ||K_E - K_0|| reaches `fraction`, and the same for the
    angle arccos sim(K_t, K_0) relative to its final value. The radius mixes growth
    of the kernel's scale with rotation; the angle is rotation only.
    """
    desc = f"{dataset}: kernel stops moving earlier under adversarial training"
    claim = "adversarial training falls much earlier into the lazy regime [ABS]"
    crit = (
        f"first epoch with radius_t >= {fraction} radius_E, and with angle_t >= "
        f"{fraction} angle_E: PGD earlier than standard on both (pass), on neither "
        "(fail), mixed (inconclusive)"
    )
    if not {"standard", "pgd"} <= set(measures):
        return _missing(8, desc, claim, crit, "standard and pgd needed")
    by_radius, by_angle = {}, {}
    for r, m in measures.items():
        by_radius[r] = settle_epoch(m["radius_full"], fraction)
        angle = np.asarray(m["angle_full"], float)
        rel = angle / angle[-1] if angle[-1] > 0 else np.ones_like(angle)
        by_angle[r] = settle_epoch(rel, fraction)
    e = len(measures["standard"]["radius_full"]) - 1
    measured = (
        _listing(f"settling epoch (of {e}) by radius", by_radius, "d")
        + "; "
        + _listing("by angle", by_angle, "d")
    )
    earlier = [by_radius["pgd"] < by_radius["standard"]]
    earlier.append(by_angle["pgd"] < by_angle["standard"])
    status = (
        "pass" if all(earlier) else ("fail" if not any(earlier) else "inconclusive")
    )
    return _row(8, desc, claim, measured, crit, status)


def top_concentration(dataset: str, measures: Mapping[str, Series], k: int) -> dict:
    """Finding 9: top-k mass under PGD exceeds standard over most epochs."""
    desc = f"{dataset}: concentration of the eNTK norm on the top-{k} eigenvalues"
    claim = (
        "adversarial training concentrates more norm in the top eigenspace than "
        "standard training (main Fig. 5, supp. Fig. 7)"
    )
    crit = f"mass_top{k}(PGD) > mass_top{k}(standard) on more than half of epochs 1..E"
    if not {"standard", "pgd"} <= set(measures):
        return _missing(9, desc, claim, crit, "standard and pgd needed")
    key = f"mass_top{k}"
    std, pgd = measures["standard"][key][1:], measures["pgd"][key][1:]
    share = float(np.mean(pgd > std))
    means = ", ".join(f"{r}={np.mean(m[key][1:]):.4f}" for r, m in measures.items())
    measured = (
        f"mean over epochs 1..E: {means}; epoch 0: {measures['standard'][key][0]:.4f}; "
        f"PGD above standard on {share:.0%} of epochs"
    )
    return _row(9, desc, claim, measured, crit, "pass" if share > 0.5 else "fail")


def fgsm_overfitting(
    dataset: str, measures: Mapping[str, Series], runs: Mapping[str, Series], k: int
) -> dict:
    """Finding 10: FGSM top-k mass drops below standard; FGSM robustness collapses."""
    desc = f"{dataset}: FGSM training and catastrophic overfitting"
    claim = (
        "with FGSM training the top mass drops below standard training (supp. Fig. 7),"
        " attributed to catastrophic overfitting"
    )
    crit = (
        f"(a) mass_top{k}(FGSM) < mass_top{k}(standard) on most of the second half; "
        "(b) PGD test accuracy of the FGSM model ends below half of its peak"
    )
    if not {"standard", "fgsm"} <= set(measures):
        return _missing(10, desc, claim, crit, "standard and fgsm needed")
    key = f"mass_top{k}"
    half = len(measures["standard"][key]) // 2
    below = float(
        np.mean(measures["fgsm"][key][half:] < measures["standard"][key][half:])
    )
    robust = np.asarray(runs["fgsm"]["test_robust_acc"])
    peak, final = float(robust.max()), _tail(robust)
    a, b = below > 0.5, peak > 0 and final < 0.5 * peak
    measured = (
        f"(a) FGSM below standard on {below:.0%} of the second half; (b) FGSM model "
        f"PGD test acc: peak {peak:.3f}, final {final:.3f}"
    )
    status = "pass" if a and b else ("fail" if not (a or b) else "inconclusive")
    return _row(10, desc, claim, measured, crit, status)


def kernel_growth(dataset: str, measures: Mapping[str, Series]) -> dict:
    """Finding 11: ||K_E||_F / ||K_0||_F is larger under standard than PGD training."""
    desc = f"{dataset}: growth of the kernel values during training"
    claim = (
        "kernel values grow during training, substantially more for standard than "
        "adversarial training; more spread between classes under adversarial "
        "training (supp. Fig. 9)"
    )
    crit = "||K_E||_F / ||K_0||_F: standard > PGD"
    if not {"standard", "pgd"} <= set(measures):
        return _missing(11, desc, claim, crit, "standard and pgd needed")
    growth = {
        r: float(m["fro_norm"][-1] / m["fro_norm"][0]) for r, m in measures.items()
    }
    peak = {r: float(m["max_abs"][-1] / m["max_abs"][0]) for r, m in measures.items()}
    off = {r: 1.0 - float(m["diag_block_fraction"][-1]) for r, m in measures.items()}
    measured = (
        _listing("||K_E||/||K_0||", growth)
        + "; "
        + _listing("max|K_E|/max|K_0|", peak)
        + "; "
        + _listing("off-diagonal output-block share of ||K_E||^2", off, ".3f")
    )
    status = "pass" if growth["standard"] > growth["pgd"] else "fail"
    return _row(11, desc, claim, measured, crit, status)


def top_space_rotation(dataset: str, measures: Mapping[str, Series], k: int) -> dict:
    """Finding 12: in the top-k space standard training rotates less; PGD the same."""
    desc = f"{dataset}: polar dynamics of the top-{k} eigenspace vs the full space"
    claim = (
        "adversarial: top-space dynamics nearly the same as the full space; "
        "standard: less rotation in the top space (supp. Fig. 8)"
    )
    crit = (
        "rho = final angle(top) / final angle(full): rho(standard) < 1 and "
        "rho(standard) < rho(PGD)"
    )
    if not {"standard", "pgd"} <= set(measures):
        return _missing(12, desc, claim, crit, "standard and pgd needed")
    rho = {
        r: float(m["angle_top"][-1] / max(m["angle_full"][-1], 1e-300))
        for r, m in measures.items()
    }
    angles = ", ".join(
        f"{r}: full {m['angle_full'][-1]:.3f} / top {m['angle_top'][-1]:.3f} rad"
        for r, m in measures.items()
    )
    measured = angles + "; " + _listing("rho", rho, ".3f")
    ok = rho["standard"] < 1 and rho["standard"] < rho["pgd"]
    return _row(12, desc, claim, measured, crit, "pass" if ok else "fail")


def linearized_gap(
    dataset: str, lin_runs: Mapping[int, Series], n_test: int | None = None
) -> dict:
    """Finding 13: the clean-minus-robust gap shrinks the later one linearises.

    With `n_test` (test points behind each accuracy) an ordered but small effect is
    inconclusive: the drop of the gap from the first to the last linearisation epoch
    must exceed ``sqrt(2) / sqrt(n_test)``, twice the worst-case (p = 1/2) standard
    error of a difference of two accuracies on `n_test` points.
    """
    desc = f"{dataset}: PGD training continued on the linearised model (supp. E.1)"
    claim = (
        "no collapse, training stagnates; the earlier the linearisation the larger "
        "the clean-robust gap (supp. Fig. 10)"
    )
    resolution = math.sqrt(2.0 / n_test) if n_test else 0.0
    crit = (
        "test clean - PGD accuracy (mean of the last 10% of epochs) strictly "
        "decreasing in the linearisation epoch"
        + (
            f", first-to-last drop > {resolution:.3f} (2 SE on {n_test} points)"
            if n_test
            else ""
        )
    )
    if len(lin_runs) < 2:
        return _missing(13, desc, claim, crit, "at least two linearisation epochs")
    epochs = sorted(lin_runs)
    gap = {
        e: _tail(lin_runs[e]["test_clean_acc"]) - _tail(lin_runs[e]["test_robust_acc"])
        for e in epochs
    }
    train_gap = {
        e: _tail(lin_runs[e]["train_clean_acc"])
        - _tail(lin_runs[e]["train_robust_acc"])
        for e in epochs
    }
    robust = {e: _tail(lin_runs[e]["test_robust_acc"]) for e in epochs}
    measured = (
        _listing("test gap", gap, ".3f", "lin@")
        + "; "
        + _listing("train gap", train_gap, ".3f", "lin@")
        + "; "
        + _listing("final test PGD acc", robust, ".3f", "lin@")
    )
    values = [gap[e] for e in epochs]
    ordered = all(a > b for a, b in zip(values[:-1], values[1:], strict=True))
    if not ordered:
        status = "fail"
    elif values[0] - values[-1] <= resolution:
        status = "inconclusive"
    else:
        status = "pass"
    return _row(13, desc, claim, measured, crit, status)
