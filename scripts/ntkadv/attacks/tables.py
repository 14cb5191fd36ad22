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

    fgsm_acc and pgd_acc are robust accuracies (correct clean AND correct attacked);
    *_acc_attacked are the plain accuracies under attack (what the notebook
    printed); null_clean_acc is the mean clean accuracy of the permuted-label
    machines (the same-run null control).

    Args:
        accuracy: the kernel's accuracy table (rule attack_ntk).
        notebook: {dataset, arch} of the notebook reference kernel.
        dataset: that dataset's config entry (n_train, selection, eps).
        pgd: {steps, rel_step} of the PGD run on that kernel.
    """
    inf = accuracy[np.isinf(accuracy["tau"].astype(float))]
    at_eps = inf[(inf["attack"] == "clean") | np.isclose(inf["eps_mult"], 1.0)]
    true = at_eps[at_eps["labels"] == "true"].set_index("attack")
    perm = at_eps[(at_eps["labels"] != "true") & (at_eps["attack"] == "clean")]

    def get(attack: str, col: str = "accuracy") -> float:
        return float(true[col].get(attack, np.nan))

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
        "clean_acc": get("clean"),
        "fgsm_acc": get("fgsm"),
        "pgd_acc": get("pgd"),
        "fgsm_acc_attacked": get("fgsm", "accuracy_attacked"),
        "pgd_acc_attacked": get("pgd", "accuracy_attacked"),
        "random_sign_acc": get("random_sign"),
        "null_clean_acc": float(perm["accuracy"].mean()) if len(perm) else np.nan,
        "robust_convention": "correct clean AND correct attacked",
    }


def notebook_reference(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The full-kernel row plus the per-feature rows (when the features stage ran).

    Nullable dtypes keep integer columns (eigen_index, n_test) integer across the rows
    that lack them.
    """
    table = pd.concat(list(parts), ignore_index=True, sort=False).convert_dtypes()
    table["row"] = table["row"].fillna("eigenfeature")
    return table
