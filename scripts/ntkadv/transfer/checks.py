"""Checks of the transfer stage: the config before any job, and every GD run.

* `check` (called by ntkadv.configcheck.check_config before the DAG is built): the
  kernel is a two-layer arch cached for every transfer dataset (the dense solver;
  the matrix-free one, ``transfer.solver: iterative``, reads only the dataset's
  twolayer Jacobian, which the DAG computes for any dataset); every
  ``transfer.lr_overrides`` key is a transfer dataset (a mistyped key would leave
  that dataset at the default lr); ``transfer.n_train`` fits in the dataset
  (no silent cap); the gradient-image test point exists; the alignment and image
  epochs are within ``transfer.epochs``. A stage with ``transfer.datasets: []`` is
  disabled and nothing else is checked.
* `check_stability`, `check_finite`, `check_descent` (called by the jobs): GD on the
  mean squared loss of the lazy net is stable only for lr·λ_max(Θ)/n < 2
  (`ntkadv.transfer.net.gd_stability`); a violation, a non-finite loss, parameter or
  prediction, or a training loss above `LOSS_GROWTH` times its initial value fails
  the job with `DivergenceError`, whose message names the dataset, width, seed,
  epoch and the config key to change. No output, figure or claims row is written.
* ntkadv.attacks.checks.check_attack_accuracy (the one check shared by every
  stage that scores an attack, called by `ntkadv.transfer.experiment.run_transfer`):
  the net's own FGSM must not raise its accuracy.

No jax here (the config checks run in the Snakefile).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ntkadv.config import fail

#: GD on the (linearised) mean loss is stable iff lr·λ_max(Θ)/n < STABLE.
STABLE = 2.0
#: A training loss above LOSS_GROWTH × the initial loss at an evaluation epoch is
#: divergence (stable GD decreases the loss of the lazy net monotonically).
LOSS_GROWTH = 2.0


class DivergenceError(RuntimeError):
    """A GD run (or its NTK reference) left the stable regime; the message says why."""


def lr_key(dataset: str) -> str:
    """The config key that sets the learning rate of `dataset`."""
    return f"transfer.lr_overrides.{dataset} (or transfer.lr, the default)"


def where(dataset: str, width: int | None = None, seed: int | None = None) -> str:
    """'dataset mnist, width 1000, seed 0' (the parts that are known)."""
    parts = [f"dataset {dataset}"]
    if width is not None:
        parts.append(f"width {width}")
    if seed is not None:
        parts.append(f"seed {seed}")
    return ", ".join(parts)


def check_stability(
    stability: float, lam_max: float, n: int, lr: float, dataset: str, at: str
) -> None:
    """Fail unless lr·λ_max/n < 2 (GD on the mean loss, supp. Eq. 3 time t = τ/n).

    Args:
        stability: lr·λ_max/n (`ntkadv.transfer.net.gd_stability`).
        lam_max: largest eigenvalue of Θ(X, X) over the n training points.
        n: training points.
        lr: the dataset's learning rate.
        dataset: dataset name (for the config key).
        at: where the check runs ("dataset mnist, width 1000, seed 0, epoch 0").

    Raises:
        DivergenceError: naming `at`, the numbers and the key to change.
    """
    if np.isfinite(stability) and stability < STABLE:
        return
    limit = STABLE * n / lam_max if lam_max > 0 else float("nan")
    raise DivergenceError(
        f"transfer: GD is unstable for {at}: lr * lambda_max / n = {lr:g} * "
        f"{lam_max:.6g} / {n} = {stability:.6g} >= {STABLE:g}, so full-batch GD on "
        f"the mean loss diverges (the nets leave the lazy regime). Set "
        f"{lr_key(dataset)} below {limit:.4g} (e.g. {limit / 2:.2g})."
    )


def check_finite(arrays: Mapping[str, Any], lr: float, dataset: str, at: str) -> None:
    """Fail if any of `arrays` (name -> array or scalar) has a NaN or infinity."""
    bad = [name for name, value in arrays.items() if not np.all(np.isfinite(value))]
    if bad:
        raise DivergenceError(
            f"transfer: GD diverged for {at}: {', '.join(bad)} not finite (lr "
            f"{lr:g}). Lower {lr_key(dataset)}."
        )


def check_descent(loss: float, loss0: float, lr: float, dataset: str, at: str) -> None:
    """Fail if the training loss exceeds `LOSS_GROWTH` × its initial value."""
    if loss <= LOSS_GROWTH * loss0:
        return
    raise DivergenceError(
        f"transfer: GD diverged for {at}: training loss {loss:.6g} > "
        f"{LOSS_GROWTH:g} x the initial loss {loss0:.6g} (lr {lr:g}). Lower "
        f"{lr_key(dataset)}."
    )


# ---------------------------------------------------------------- config


def check(config: Mapping[str, Any]) -> None:
    """Config checks of the stage (see the module docstring); `fail` names the key."""
    tr, archs = config["transfer"], config["architectures"]
    datasets, kernel_ds = config["datasets"], config["kernels"]["datasets"]
    if not tr["datasets"]:
        return
    if tr["arch"] not in archs:
        fail("transfer.arch", f"unknown arch '{tr['arch']}'")
    if archs[tr["arch"]]["family"] != "twolayer":
        fail("transfer.arch", "must be of family 'twolayer'")
    for name in tr["datasets"]:
        # the matrix-free reference reads no Gram: a transfer-only dataset (e.g.
        # paper.yaml's 60K MNIST) needs just its twolayer Jacobian, not every
        # architecture's kernel cache of kernels.datasets
        if name not in kernel_ds and tr["solver"] != "iterative":
            fail(
                "transfer.datasets",
                f"'{name}' has no kernel cache (kernels.datasets: {kernel_ds})",
            )
    for name in tr["lr_overrides"]:
        if name not in tr["datasets"]:
            fail(
                f"transfer.lr_overrides.{name}",
                f"'{name}' is not a transfer dataset (transfer.datasets: "
                f"{list(tr['datasets'])}); a mistyped key would leave that dataset "
                f"at transfer.lr = {tr['lr']:g}",
            )
    if tr["n_train"] is not None:
        for name in tr["datasets"]:
            have = datasets[name]["n_train"]
            if tr["n_train"] > have:
                fail(
                    "transfer.n_train",
                    f"{tr['n_train']} exceeds datasets.{name}.n_train = {have} (the "
                    f"cached training points); lower it, or null for all",
                )
    for key in ("align_epoch",):
        if tr[key] > tr["epochs"]:
            fail(f"transfer.{key}", f"{tr[key]} > transfer.epochs = {tr['epochs']}")
    late = [e for e in tr["image_epochs"] if e > tr["epochs"]]
    if late:
        fail("transfer.image_epochs", f"{late} > transfer.epochs = {tr['epochs']}")
    image = tr["image_dataset"]
    if image is None:
        return
    if image not in tr["datasets"]:
        fail(
            "transfer.image_dataset",
            f"'{image}' is not a transfer dataset (transfer.datasets: "
            f"{list(tr['datasets'])}; null: no gradient-image figure)",
        )
    n_test = datasets[image]["n_test"]
    if tr["image_index"] >= n_test:
        fail(
            "transfer.image_index",
            f"{tr['image_index']} is not a test point of {image} "
            f"(datasets.{image}.n_test = {n_test}: indices 0..{n_test - 1})",
        )
