"""Tests of ntkadv.attacks.claims on hand-built accuracy tables."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from ntkadv.attacks import claims as attack_claims


def _table(clean, robust, taus=(0.1, 10.0, 1e3, math.inf)):
    rows = []
    for tau, c, r in zip(taus, clean, robust, strict=True):
        ids = {"dataset": "d", "arch": "a", "tau": tau, "n_eval": 10}
        rows.append(
            {**ids, "attack": "clean", "eps": 0.0, "eps_mult": 0.0, "accuracy": c}
        )
        rows.append(
            {**ids, "attack": "fgsm", "eps": 0.1, "eps_mult": 1.0, "accuracy": r}
        )
    return pd.DataFrame(rows)


def test_early_is_first_useful_time():
    # tau=0.1 is below chance (excluded); tau=10 is within 0.1 of clean(inf)
    ev = attack_claims.early_vs_late(
        _table([0.1, 0.8, 0.85, 0.85], [0.0, 0.5, 0.2, 0.1]), "fgsm"
    )
    assert ev["tau_early"].item() == 10.0
    assert ev["robust_early"].item() == 0.5 and ev["robust_inf"].item() == 0.1
    assert ev["spearman"].item() < 0


@pytest.mark.parametrize(
    ("robust", "status"),
    [([0.4, 0.4, 0.2, 0.1], "pass"), ([0.0, 0.1, 0.2, 0.3], "fail")],
)
def test_finding4_status(robust, status):
    claims = attack_claims.attack_claims(
        _table([0.8, 0.8, 0.9, 0.9], robust), pd.DataFrame(), None, 0.1
    )
    row = claims[claims["description"].str.startswith("FGSM")]
    assert row["status"].item() == status
    assert list(claims.columns) == attack_claims.COLUMNS
    assert claims.loc[claims["finding"] == 15, "status"].item() == "inconclusive"
