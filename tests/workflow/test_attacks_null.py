"""Negative control of the attack stage at smoke scale: with permuted training labels
(tests/config/smoke_null.yaml) neither finding 4 nor finding 6 may pass."""

from __future__ import annotations

import pandas as pd
import pytest

from ntkadv.claims import core


@pytest.mark.slow
def test_permuted_labels_pass_no_attack_finding(smoke_null_run):
    workdir = smoke_null_run
    claims = pd.read_csv(workdir / "results/tables/claims/attacks.csv")
    assert list(claims.columns) == core.COLUMNS
    assert set(claims["verdict"]) <= set(core.VERDICTS)
    assert {4, 6} <= set(claims["finding"])
    passed = claims[claims["finding"].isin([4, 6]) & (claims["verdict"] == "pass")]
    assert passed.empty, passed[["finding", "dataset", "statistic", "note"]]
    notebook = pd.read_csv(workdir / "results/tables/notebook_reference.csv")
    assert notebook.loc[0, "robust_convention"] == "correct clean AND correct attacked"
