"""Checks of the attack stage: the config (called by
ntkadv.configcheck.check_config) and `check_attack_accuracy`, the one verification
of an attack used by every stage that scores one (kernel machines here, trained and
linearised nets in ntkadv.dynamics, lazy nets in ntkadv.transfer).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ntkadv.config import fail

#: Float slack of `check_attack_accuracy` (accuracies are ratios of counts).
FLOAT_TOL = 1e-9


class AttackCheckError(RuntimeError):
    """An attack raised the accuracy of the model it attacks: it is broken."""


def check_attack_accuracy(
    clean: float, attacked: float, n: int, attack: str, where: str
) -> None:
    """Fail if an attack's plain accuracy exceeds clean accuracy by more than 1/n.

    `attacked` must be the *plain* accuracy on the attacked points (correct on
    x_adv); robust accuracy in the sense "correct clean AND correct attacked" is at
    most `clean` by construction and passes trivially (it is checked too, against
    a regression of that construction). Both on the same n points, same model.

    Tolerance. A loss-ascent attack started at x (FGSM, or PGD from x_0 = x) moves
    a misclassified point *into* its class only by overshooting: the sign step
    raises the loss to first order, so a flip wrong -> right needs the model to
    bend within one step. For a model linear in x (FGSM on a binary kernel machine
    of a linear kernel) it cannot happen: adversarial-correct is a subset of
    clean-correct. For a non-linear model (NTK machines, nets; PGD or FGSM) it is
    not excluded, but for a working attack such flips are isolated and outnumbered
    by right -> wrong flips, so the net change (gained - lost)/n is <= 0 up to
    single points: one point (1/n) plus `FLOAT_TOL` is allowed. A broken attack
    (ascent sign flipped, gradient of another function than the one evaluated, a
    wrong projection) moves misclassified points towards their label
    systematically and exceeds this bound unless the model is right on almost
    every point (the lin@0 CIFAR-10 run: 0.215 vs 0.165 on 200 points, 10 points
    over). Not for label-free or random directions (the random-sign null, the
    max-l1 / sum-dz / first-order directions), which may raise accuracy legitimately.

    Args:
        clean: accuracy of the model on the n clean points.
        attacked: accuracy of the same model on the attacked versions of them.
        n: number of points (> 0).
        attack: attack name for the message ('PGD-5', 'FGSM').
        where: the run, e.g. 'dataset cifar10, regime pgd, seed 0, epoch 3, test'.

    Raises:
        AttackCheckError: one line naming the run, the attack and both accuracies.
        ValueError: n < 1.
    """
    if n < 1:
        raise ValueError(f"check_attack_accuracy: n = {n} points for {where}")
    if attacked <= clean + 1.0 / n + FLOAT_TOL:
        return
    raise AttackCheckError(
        f"{attack} raised accuracy for {where}: {attacked:.4g} under attack > "
        f"{clean:.4g} clean on the same {n} points (by more than 1/n); the attack "
        "does not ascend the loss of the model it scores (broken attack)"
    )


#: Loss-ascent attacks of the kernel-machine suite (`check_suite_rows` checks these;
#: the first-order directions and the random-sign null are label-free).
ASCENT_ATTACKS = ("fgsm", "pgd")


def check_suite_rows(rows: Sequence[Mapping[str, Any]], where: str) -> None:
    """`check_attack_accuracy` for every ascent-attack row of an accuracy table.

    Rows as `ntkadv.attacks.suite.attack_suite` writes them (labels, attack, tau,
    t, eps, accuracy, accuracy_attacked, n_eval); each FGSM / PGD row of the
    true-label machine is compared with the clean row of the same time. (The
    permuted-label machines are nulls near chance; they are not checked.)

    Raises:
        AttackCheckError: naming `where`, the time t and eps of the failing row.
    """
    clean = {
        r["tau"]: r["accuracy"]
        for r in rows
        if r["attack"] == "clean" and r["labels"] == "true"
    }
    for r in rows:
        if r["attack"] in ASCENT_ATTACKS and r["labels"] == "true":
            check_attack_accuracy(
                clean[r["tau"]],
                r["accuracy_attacked"],
                int(r["n_eval"]),
                r["attack"].upper(),
                f"{where}, t {r['t']:.4g}, eps {r['eps']:.4g}",
            )


def check(config: Mapping[str, Any]) -> None:
    """Attacked architectures, the example kernel and the notebook kernel exist."""
    att, archs = config["attacks"], config["architectures"]
    kernel_ds = config["kernels"]["datasets"]
    # membership only (no registry order: jobs import this module)
    attacked = list(att["architectures"] or archs)
    for arch in attacked:
        if arch not in archs:
            fail("attacks.architectures", f"unknown arch '{arch}'")
    if att["example_arch"] not in attacked:
        fail(
            "attacks.example_arch",
            f"'{att['example_arch']}' is not attacked (attacked: {attacked})",
        )
    nb = att["notebook"]
    if nb and (nb["arch"] not in attacked or nb["dataset"] not in kernel_ds):
        fail(
            "attacks.notebook",
            f"{nb} must name an attacked architecture and a kernels.datasets entry",
        )
