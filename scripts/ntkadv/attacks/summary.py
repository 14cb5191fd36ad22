"""Rules aggregate_attack_tables, summarize_attack_claims, tabulate_notebook_kernel and
aggregate_notebook_reference (pandas / NumPy; no jax: the CPU environment).

Each task has the entry signature of every rule (scripts/_common.call):
``(inputs, outputs, settings, ids, log)``.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pandas as pd

from ntkadv.attacks.tables import concat_csv, notebook_kernel_row, notebook_reference


@dataclasses.dataclass(frozen=True)
class AttackClaimsSettings:
    """Params of rule summarize_attack_claims.

    Attributes:
        near_zero: robust accuracy below this is "near zero" (finding 6).
        notebook: config attacks.notebook ({dataset, arch}) or None.
        seed: config seed (bootstrap resamples).
    """

    near_zero: float
    notebook: dict[str, str] | None
    seed: int


@dataclasses.dataclass(frozen=True)
class NotebookKernelSettings:
    """Params of rule tabulate_notebook_kernel (`tables.notebook_kernel_row`).

    Attributes:
        notebook: {dataset, arch} of the notebook reference kernel.
        dataset: that dataset's config entry (n_train, selection, eps).
        pgd: {steps, rel_step} of the PGD run on that kernel.
    """

    notebook: dict[str, str]
    dataset: dict[str, Any]
    pgd: dict[str, Any]


def aggregate_attack_tables(
    inputs: dict[str, list[str]],
    outputs: dict[str, str],
    settings: None,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Join the per-kernel accuracy and gradient-check tables of rule attack_ntk.

    Args:
        inputs: ``accuracy`` and ``checks``: the CSV tables of every attacked kernel.
        outputs: ``accuracy`` and ``checks``: the joined tables.
        settings: None (the rule consumes no params); ids: none; log: the job's logger.
    """
    for key in ("accuracy", "checks"):
        table = concat_csv(inputs[key])
        table.to_csv(outputs[key], index=False)
        log.info("%s: %d rows from %d files", key, len(table), len(inputs[key]))


def extra_pointwise(paths: list[str]) -> list[tuple[float, float, list]]:
    """(ε, paper ε, kernels) per (dataset, extra ε) of the pointwise.h5 files, in
    file order (`pointwise.read_pointwise_extra`); [] when no file has extra ε."""
    from ntkadv import h5io
    from ntkadv.attacks.pointwise import read_pointwise_extra

    groups: dict[tuple[str, float], tuple[float, list]] = {}
    for path in paths:
        paper = float(h5io.read_attrs(path)["eps"])
        for eps, pw in read_pointwise_extra(path):
            groups.setdefault((pw.dataset, eps), (paper, []))[1].append(pw)
    return [(eps, paper, pws) for (_, eps), (paper, pws) in groups.items()]


def summarize_attack_claims(
    inputs: dict[str, Any],
    outputs: dict[str, str],
    settings: AttackClaimsSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Findings 4, 6 and 15 against same-run nulls ± SE (`claims.attack_claims`).

    Args:
        inputs: ``pointwise`` (pointwise.h5 of every attacked kernel) and ``checks``
            (results/tables/attacks_gradient_check.csv).
        outputs: ``claims``: the stage's claims rows (CSV).
        settings: near_zero, notebook and seed; ids: none; log: the job's logger.
    """
    from ntkadv.attacks.claims import attack_claims
    from ntkadv.attacks.pointwise import read_pointwise

    claims = attack_claims(
        [read_pointwise(p) for p in inputs["pointwise"]],
        pd.read_csv(inputs["checks"]),
        settings.notebook,
        float(settings.near_zero),
        int(settings.seed),
        extra=extra_pointwise(inputs["pointwise"]),
    )
    claims.to_csv(outputs["claims"], index=False)
    log.info("claims:\n%s", claims.to_string())


def tabulate_notebook_kernel(
    inputs: dict[str, str],
    outputs: dict[str, str],
    settings: NotebookKernelSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Clean / FGSM / PGD accuracy of the notebook kernel's f_∞, one table row.

    Args:
        inputs: ``accuracy``: the notebook kernel's accuracy table (rule attack_ntk).
        outputs: ``table``: the kernel row of the notebook reference (CSV).
        settings: the notebook kernel, its dataset entry and PGD settings; ids: none;
            log: the job's logger.
    """
    s = settings
    row = notebook_kernel_row(
        pd.read_csv(inputs["accuracy"]), s.notebook, s.dataset, s.pgd
    )
    pd.DataFrame([row]).to_csv(outputs["table"], index=False)
    log.info("notebook reference (kernel): %s", row)


def aggregate_notebook_reference(
    inputs: dict[str, list[str]],
    outputs: dict[str, str],
    settings: None,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """The kernel rows plus the per-feature rows (if that stage runs), one table.

    Args:
        inputs: ``tables``: the kernel table and, if any, the per-feature table.
        outputs: ``table``: results/tables/notebook_reference.csv.
        settings: None (the rule consumes no params); ids: none; log: the job's logger.
    """
    table = notebook_reference([pd.read_csv(p) for p in inputs["tables"]])
    table.to_csv(outputs["table"], index=False)
    log.info("%d rows from %s", len(table), list(inputs["tables"]))
