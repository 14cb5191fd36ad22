"""Per-point record of the attack stage and the time selection of finding 4.

Rule attack_ntk writes the per-point correctness of each attacked kernel
(`pointwise.h5`, from `pointwise_arrays`); `read_pointwise` reads it back as a
`Pointwise` for `ntkadv.attacks.claims`. Conventions:

* Robust accuracy counts a point only if it is correct clean AND correct attacked
  (FGSM, PGD, the label-free first-order attacks, a random-sign perturbation).
* Finding 4's early time is chosen on one half of the evaluation points and used on
  the other (a class-stratified cross-fit, `early_times`): choosing the time on the
  same points selects their luck, which robust accuracy (AND clean) inherits.

No jax here (the claims rule runs in envs/cpu.yaml).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ntkadv.claims import core

#: f_t is "useful" at τ if clean(τ) >= clean(∞) − USEFUL_GAP and clean(τ) is 2 SE
#: above the majority rate.
USEFUL_GAP = 0.1
BOOT_REPS = 1000
#: Attacks of the finding-4 statistic (each a part of the conjunction).
ROBUST_ATTACKS = ("fgsm", "pgd")
#: pointwise.h5 tables of the extra ε (datasets.<d>.extra_eps; (E, S, T, m) each,
#: attrs extra_eps), the finding-4 attacks at every extra ε.
EXTRA = tuple(f"extra_{a}" for a in ROBUST_ATTACKS)


@dataclasses.dataclass(frozen=True)
class Pointwise:
    """Per-point correctness of one attacked kernel at the dataset's ε.

    Attributes:
        dataset, arch: the kernel.
        taus: (T,) normalised times, the last one inf.
        labels: (m,) class index of the evaluation points.
        correct: attack -> (S, T, m) int8: 1 correct, 0 wrong, −1 not run. Label
            set 0 is the true training labels, 1..P the permuted ones; "clean" is
            the prediction at the clean point, every other entry the prediction at
            the attacked point (not yet AND-ed with clean).
    """

    dataset: str
    arch: str
    taus: np.ndarray
    labels: np.ndarray
    correct: Mapping[str, np.ndarray]

    @property
    def n_perm(self) -> int:
        return int(self.correct["clean"].shape[0]) - 1

    @property
    def m(self) -> int:
        return int(self.labels.shape[0])

    def ran(self, attack: str, s: int = 0) -> list[int]:
        """Time indices at which `attack` was run for label set s."""
        if attack not in self.correct:
            return []
        return [j for j in range(len(self.taus)) if self.correct[attack][s, j, 0] >= 0]

    def robust(self, attack: str) -> np.ndarray:
        """(S, T, m) bool: clean AND attacked correct (False where not run)."""
        return (self.correct["clean"] == 1) & (self.correct[attack] == 1)

    def clean(self) -> np.ndarray:
        """(S, T, m) bool clean correctness."""
        return self.correct["clean"] == 1


def null_ran(pw: Pointwise, attack: str, times: Sequence[int]) -> list[int]:
    """Times among `times` at which some permuted-label machine was not attacked
    by `attack` ([] when all were, or when there are no permuted machines).

    Rule attack_ntk attacks them only where the claims read them
    (`ntkadv.attacks.suite.with_null_times`); a claim that reads elsewhere must
    fail, not count the "not run" entries (−1) as wrong."""
    table = pw.correct.get(attack)
    if table is None or pw.n_perm == 0:
        return list(times)
    return [int(j) for j in times if (table[1:, j] < 0).any()]


def pointwise_arrays(
    taus: np.ndarray, labels: np.ndarray, correct: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The arrays of pointwise.h5 (flat names; see `read_pointwise`)."""
    out = {"taus": np.asarray(taus, np.float64), "labels": np.asarray(labels)}
    out |= {f"correct_{k}": np.asarray(v, np.int8) for k, v in correct.items()}
    return out


def read_pointwise_extra(path: str) -> list[tuple[float, Pointwise]]:
    """The same kernel at every extra ε of its pointwise.h5 ([] without).

    Each `Pointwise` has the clean correctness of the file (it does not depend on
    ε) and the FGSM / PGD tables of that ε (`EXTRA`), so `ntkadv.attacks.claims.
    finding4_rows` computes finding 4 at that ε exactly as at the paper's.

    Returns:
        [(ε, Pointwise)] in attrs extra_eps order.
    """
    from ntkadv import h5io

    extra = [float(e) for e in h5io.read_attrs(path).get("extra_eps", [])]
    if not extra:
        return []
    pw = read_pointwise(path)
    tables = h5io.read(path, [f"correct_{a}" for a in EXTRA])
    return [
        (
            eps,
            dataclasses.replace(
                pw,
                correct={
                    "clean": pw.correct["clean"],
                    **{a: tables[f"correct_extra_{a}"][i] for a in ROBUST_ATTACKS},
                },
            ),
        )
        for i, eps in enumerate(extra)
    ]


def read_pointwise(path: str) -> Pointwise:
    """Read results/attacks/{dataset}/{arch}/pointwise.h5 (rule attack_ntk)."""
    from ntkadv import h5io

    attrs = h5io.read_attrs(path)
    names = [str(a) for a in attrs["attacks"]]
    arrays = h5io.read(path, ["taus", "labels"] + [f"correct_{a}" for a in names])
    return Pointwise(
        dataset=str(attrs["dataset"]),
        arch=str(attrs["arch"]),
        taus=arrays["taus"],
        labels=arrays["labels"],
        correct={a: arrays[f"correct_{a}"] for a in names},
    )


# ---------------------------------------------------------------- finding 4


def useful_times(
    pw: Pointwise, points: np.ndarray | None = None, seed: int = 0
) -> dict[int, tuple[float, float]]:
    """Finite times at which f_t (true labels) is useful on `points`: {j: (clean, SE)}.

    Useful: clean(τ_j) >= clean(∞) − USEFUL_GAP and clean(τ_j) − majority rate >=
    2 SE (paired bootstrap over the points, the majority rate recomputed on each
    resample).

    Args:
        pw: the kernel's per-point correctness.
        points: evaluation-point indices to judge on (default all).
        seed: bootstrap seed.
    """
    idx = np.arange(pw.m) if points is None else np.asarray(points)
    clean = pw.clean()[0][:, idx].astype(np.float64)  # (T, |idx|)
    labels = pw.labels[idx]
    inf_acc = float(clean[-1].mean())
    out = {}
    for j in range(len(pw.taus) - 1):
        acc = float(clean[j].mean())
        if acc < inf_acc - USEFUL_GAP:
            continue

        def stat(r, row=clean[j]):
            return float(row[r].mean()) - core.majority_rate(labels[r])

        se = core.bootstrap_se(stat, idx.size, BOOT_REPS, seed + j)
        if core.verdict(acc - core.majority_rate(labels), se) == "pass":
            out[j] = (acc, se)
    return out


def halves(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two folds of the cross-fit: alternate points of each class (stratified,
    so both halves keep the class proportions and the majority rate)."""
    labels = np.asarray(labels)
    a, b = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        a.append(idx[0::2])
        b.append(idx[1::2])
    return np.sort(np.concatenate(a)), np.sort(np.concatenate(b))


def early_times(pw: Pointwise, attack: str, seed: int = 0) -> tuple[np.ndarray, str]:
    """Cross-fitted τ_early of every evaluation point, or (empty, reason).

    τ_early is the earliest `attack`-attacked finite τ at which the true-label f_t is
    useful (`useful_times`). It is chosen on one half of the evaluation points and
    used on the other (`halves`): choosing it on the same points would select the
    time at which those points happen to be classified well, and robust accuracy
    (AND clean) inherits that luck — enough for a permuted-label "true" machine to
    beat its permuted controls. Returns (m,) time indices (each point gets the τ
    chosen on the other half).
    """
    inf = len(pw.taus) - 1
    if inf not in pw.ran(attack):
        return np.zeros(0, int), f"{attack} not run at t = inf"
    ran = [j for j in pw.ran(attack) if j < inf]
    if not ran:
        return np.zeros(0, int), f"{attack} run at t = inf only"
    if pw.m < 4:
        return np.zeros(0, int), "fewer than 4 evaluation points"
    fold = halves(pw.labels)
    chosen = []
    for k, part in enumerate(fold):
        useful = useful_times(pw, part, seed + 50 * k)
        cand = [j for j in ran if j in useful]
        if not cand:
            return np.zeros(0, int), (
                f"no {attack}-attacked τ < inf with clean >= clean(inf) − "
                f"{USEFUL_GAP} and 2 SE above the majority rate on "
                f"{'first second'.split()[k]} half of the evaluation points"
            )
        chosen.append(cand[0])
    j_of = np.empty(pw.m, int)
    j_of[fold[0]], j_of[fold[1]] = chosen[1], chosen[0]
    return j_of, ""


def early_vs_late(pws: Sequence[Pointwise], seed: int = 0) -> pd.DataFrame:
    """Per kernel and attack: the cross-fitted τ_early and robust accuracies.

    Returns rows dataset, arch, attack, tau_early (the two folds' τ, "a/b"),
    clean_early, clean_inf, robust_early, robust_inf, null_robust_early,
    null_robust_inf (means over the permuted-label machines), reason (why a kernel
    has no τ_early, else "").

    Raises:
        ValueError: the permuted-label machines were not attacked at a τ_early or
            at t = ∞ (`null_ran`; rule attack_ntk chose other τ than this seed
            does, e.g. the claims rule's seed differs from the attack rule's).
    """
    rows = []
    for pw in pws:
        clean = pw.clean().astype(np.float64)  # (S, T, m)
        pts = np.arange(pw.m)
        for attack in ROBUST_ATTACKS:
            j_of, reason = early_times(pw, attack, seed)
            row = {"dataset": pw.dataset, "arch": pw.arch, "attack": attack}
            row["reason"] = reason
            need = sorted({int(j) for j in j_of} | {len(pw.taus) - 1})
            missing = [] if reason or pw.n_perm == 0 else null_ran(pw, attack, need)
            if missing:
                raise ValueError(
                    f"{pw.dataset}/{pw.arch}: the permuted-label machines were not "
                    f"attacked by {attack} at τ {[float(pw.taus[j]) for j in missing]}"
                    " which finding 4 reads (rule attack_ntk chose its null times "
                    "with another seed or plan: rerun it)"
                )
            if not reason:
                rob = pw.robust(attack).astype(np.float64)
                taus = sorted({float(pw.taus[j]) for j in j_of})
                row |= {
                    "tau_early": "/".join(f"{t:g}" for t in taus),
                    "clean_early": float(clean[0, j_of, pts].mean()),
                    "clean_inf": float(clean[0, -1].mean()),
                    "robust_early": float(rob[0, j_of, pts].mean()),
                    "robust_inf": float(rob[0, -1].mean()),
                    "null_robust_early": float(rob[1:, j_of, pts].mean()),
                    "null_robust_inf": float(rob[1:, -1].mean()),
                }
            rows.append(row)
    return pd.DataFrame(rows)
