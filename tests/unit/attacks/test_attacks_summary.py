"""The attack stage's table tasks (ntkadv.attacks.summary) on tiny CSV files."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ntkadv.attacks import summary
from ntkadv.config import settings_from

LOG = logging.getLogger("test")


def _accuracy(arch: str) -> pd.DataFrame:
    """An attack_ntk accuracy table at t = ∞: clean, FGSM, PGD and one null row."""
    rows = [
        ("true", "clean", 0.0, 0.9, 0.9),
        ("true", "fgsm", 1.0, 0.2, 0.25),
        ("true", "pgd", 1.0, 0.1, 0.1),
        ("true", "fgsm", 2.0, 0.0, 0.05),
        ("perm1", "clean", 0.0, 0.5, 0.5),
    ]
    return pd.DataFrame(
        [
            dict(dataset="toy", arch=arch, labels=lab, attack=att, tau=np.inf,
                 eps_mult=mult, accuracy=acc, accuracy_attacked=att_acc, n_eval=10)
            for lab, att, mult, acc, att_acc in rows
        ]
    )  # fmt: skip


def test_aggregate_attack_tables_stacks_every_kernel(tmp_path):
    inputs = {"accuracy": [], "checks": []}
    for arch in ("fc1", "fc2"):
        for key in inputs:
            path = tmp_path / f"{arch}_{key}.csv"
            _accuracy(arch).to_csv(path, index=False)
            inputs[key].append(str(path))
    outputs = {k: str(tmp_path / f"{k}.csv") for k in inputs}
    summary.aggregate_attack_tables(inputs, outputs, None, {}, LOG)
    table = pd.read_csv(outputs["accuracy"])
    assert len(table) == 10 and list(table["arch"].unique()) == ["fc1", "fc2"]


def test_notebook_kernel_row_then_reference_table(tmp_path):
    acc = tmp_path / "accuracy.csv"
    _accuracy("fc1").to_csv(acc, index=False)
    params = {
        "dataset": {"eps": 0.1, "n_train": 100, "selection": "first"},
        "notebook": {"arch": "fc1", "dataset": "toy"},
        "pgd": {"rel_step": 0.25, "steps": 7},
    }
    s = settings_from(summary.NotebookKernelSettings, params)
    kernel = tmp_path / "kernel.csv"
    summary.tabulate_notebook_kernel(
        {"accuracy": str(acc)}, {"table": str(kernel)}, s, {}, LOG
    )
    row = pd.read_csv(kernel).iloc[0]
    assert (row["clean_acc"], row["fgsm_acc"], row["pgd_acc"]) == (0.9, 0.2, 0.1)
    assert row["fgsm_acc_attacked"] == 0.25 and row["null_clean_acc"] == 0.5
    assert row["pgd"] == "PGD-7 step 0.025"
    out = tmp_path / "reference.csv"
    summary.aggregate_notebook_reference(
        {"tables": [str(kernel)]}, {"table": str(out)}, None, {}, LOG
    )
    assert pd.read_csv(out)["row"].tolist() == ["full_kernel"]
