"""Tests of ntkadv.features.claims: claim rows on synthetic scores and top-r curves."""

from __future__ import annotations

import numpy as np
import pytest

from ntkadv.features import claims


@pytest.mark.parametrize("direction", [1, -1])
def test_claim_rows_follow_their_criteria(direction):
    idx = np.arange(100)
    rob = np.clip(0.5 - direction * 0.005 * idx, 0, 1)  # decreasing if direction = 1
    use = np.full(100, 0.3)
    scores = {a: {"index": idx, "usefulness": use, "robustness": rob} for a in "ab"}
    rows = claims.spectrum_claims("toy", scores, chance=0.1, nonrobust_max=0.05)
    assert [r["finding"] for r in rows] == [1, 2]
    assert rows[0]["status"] == ("pass" if direction == 1 else "fail")
    n_nonrobust = int(np.sum(rob <= 0.05))  # usefulness 0.3 > chance everywhere
    assert rows[1]["status"] == ("pass" if n_nonrobust > 0 else "fail")
    assert f"a: {n_nonrobust}" in rows[1]["measured"]
    r = np.array([1, 2, 5, 10, 20])
    peak = np.array([0.5, 0.6, 0.7, 0.4, 0.0])
    res = {"r": r, "clean": np.full(5, 0.8), "pgd_own": peak}
    own = peak if direction == 1 else np.sort(peak)  # interior peak / monotone
    row = claims.topr_claim("toy", "binary", {**res, "fgsm_own": own})
    assert row["status"] == ("pass" if direction == 1 else "fail")
    row = claims.topr_claim("toy", "multiclass", {**res, "fgsm_own": peak})
    assert row["status"] == "fail"  # r = 5 has clean 0.8 and robust 0.7
