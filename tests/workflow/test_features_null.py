"""The negative control of the features stage: with permuted training labels
(tests/config/smoke_null.yaml) no label-driven row of findings 1, 2, 3, 7 may pass.

The rows of the paper's readings (eigen-index trend of robustness, eigenvector
agreement) and the project extension (gradient-image frequency content) test
label-free properties of the kernels against their own controls (docs/findings.md),
so permuted training labels are no negative control for them."""

from __future__ import annotations

import pandas as pd
import pytest

from ntkadv.claims.core import COLUMNS


@pytest.mark.slow
def test_permuted_training_labels_pass_no_feature_finding(smoke_null_run):
    workdir = smoke_null_run
    table = pd.read_csv(workdir / "results/tables/claims/features.csv")
    assert list(table.columns) == COLUMNS
    label_free = table["claim"].str.contains("paper's reading|project extension")
    assert set(table.loc[label_free, "finding"]) == {1, 2, 3}
    rows = table[table["finding"].isin([1, 2, 3, 7]) & ~label_free]
    assert set(rows["finding"]) == {1, 2, 3, 7}
    assert set(rows["dataset"]) == {"mnist", "cifar2"}
    passed = rows[rows["verdict"] == "pass"]
    assert passed.empty, passed[["finding", "dataset", "effect", "effect_se"]]
