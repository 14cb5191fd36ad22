"""Tables of the attack stage: joined accuracies and the notebook reference rows.

pandas only (the aggregation rules run in the CPU plot environment).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd


def concat_csv(paths: Sequence[str]) -> pd.DataFrame:
    """The per-kernel CSV tables of rule attack_ntk stacked into one frame."""
    return pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)


def notebook_kernel_row(
    accuracy: pd.DataFrame,
    notebook: Mapping[str, str],
    dataset: Mapping[str, Any],
    pgd: Mapping[str, float],
) -> dict[str, Any]:
    """Clean / FGSM / PGD accuracy of f_∞ of the notebook kernel (nb-ref row).

    Args:
        accuracy: the kernel's accuracy table (rule attack_ntk).
        notebook: {dataset, arch} of the notebook reference kernel.
        dataset: that dataset's config entry (n_train, selection, eps).
        pgd: {steps, rel_step} of the PGD run on that kernel.
    """
    inf = accuracy[np.isinf(accuracy["tau"].astype(float))]
    at_eps = inf[(inf["attack"] == "clean") | np.isclose(inf["eps_mult"], 1.0)]
    acc = at_eps.set_index("attack")["accuracy"]
    return {
        "row": "full_kernel",
        "dataset": notebook["dataset"],
        "arch": notebook["arch"],
        "eigen_index": "",
        "predictor": "f_inf",
        "n_train": dataset["n_train"],
        "n_test": int(at_eps["n_eval"].iloc[0]),
        "selection": dataset["selection"],
        "eps": dataset["eps"],
        "pgd": f"PGD-{pgd['steps']} step {pgd['rel_step'] * dataset['eps']:.4g}",
        "clean_acc": acc.get("clean", np.nan),
        "fgsm_acc": acc.get("fgsm", np.nan),
        "pgd_acc": acc.get("pgd", np.nan),
    }


def notebook_reference(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The full-kernel row plus the per-feature rows (when the features stage ran).

    Nullable dtypes keep integer columns (eigen_index, n_test) integer across the rows
    that lack them.
    """
    table = pd.concat(list(parts), ignore_index=True, sort=False).convert_dtypes()
    table["row"] = table["row"].fillna("eigenfeature")
    return table
