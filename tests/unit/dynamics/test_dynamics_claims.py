"""Tests of ntkadv.dynamics.claims: findings 8-13 on synthetic measured series."""

from __future__ import annotations

import numpy as np

from ntkadv.claims.table import LEGACY as COLUMNS  # converted in phase B
from ntkadv.dynamics import claims as dc


def _measures(radius, mass, growth, angle_full, angle_top, t=5):
    """Synthetic measures of one regime with the given shapes of the series."""
    return {
        "radius_full": np.asarray(radius, float),
        "consecutive_distance": np.abs(np.diff(np.asarray(radius, float))),
        "mass_top20": np.asarray(mass, float),
        "fro_norm": np.array([1.0] + [growth] * (t - 1)),
        "max_abs": np.array([1.0] + [growth] * (t - 1)),
        "diag_block_fraction": np.full(t, 0.9),
        "angle_full": np.array([0.0] * (t - 1) + [angle_full]),
        "angle_top": np.array([0.0] * (t - 1) + [angle_top]),
    }


def test_claims_rows_pass_and_fail_as_specified():
    lazy = _measures([0, 0.95, 1, 1, 1], [0.9, 0.95, 0.96, 0.96, 0.97], 2.0, 0.3, 0.3)
    busy = _measures([0, 0.2, 0.4, 0.7, 1], [0.9, 0.91, 0.9, 0.9, 0.9], 20.0, 0.5, 0.3)
    lazy["angle_full"] = np.array([0.0, 0.29, 0.3, 0.3, 0.3])
    busy["angle_full"] = np.array([0.0, 0.1, 0.2, 0.3, 0.5])
    ok = {"standard": busy, "pgd": lazy}
    swapped = {"standard": lazy, "pgd": busy}
    assert dc.lazy_earlier("d", ok)["status"] == "pass"
    assert dc.lazy_earlier("d", swapped)["status"] == "fail"
    assert dc.top_concentration("d", ok, 20)["status"] == "pass"
    assert dc.top_concentration("d", swapped, 20)["status"] == "fail"
    assert dc.kernel_growth("d", ok)["status"] == "pass"
    assert dc.kernel_growth("d", swapped)["status"] == "fail"
    assert dc.top_space_rotation("d", ok, 20)["status"] == "pass"  # 0.6 < 1.0
    assert dc.top_space_rotation("d", swapped, 20)["status"] == "fail"
    assert dc.lazy_earlier("d", {"pgd": lazy})["status"] == "inconclusive"
    # radius settles earlier but the angle later: mixed evidence
    mixed = dict(lazy, angle_full=busy["angle_full"])
    assert dc.lazy_earlier("d", {"standard": busy, "pgd": mixed})["status"] == (
        "inconclusive"
    )
    row = dc.top_concentration("d", ok, 20)
    assert set(row) == set(COLUMNS)


def test_fgsm_and_linearized_claims():
    std = _measures([0, 1, 1, 1, 1], [0.9] * 5, 5.0, 0.3, 0.2)
    fgsm = _measures([0, 1, 1, 1, 1], [0.9, 0.9, 0.8, 0.8, 0.8], 5.0, 0.3, 0.2)
    collapse = {"fgsm": {"test_robust_acc": np.array([0, 0.5, 0.6, 0.1, 0.05])}}
    steady = {"fgsm": {"test_robust_acc": np.array([0, 0.5, 0.6, 0.6, 0.6])}}
    ms = {"standard": std, "fgsm": fgsm}
    assert dc.fgsm_overfitting("d", ms, collapse, 20)["status"] == "pass"
    assert dc.fgsm_overfitting("d", ms, steady, 20)["status"] == "inconclusive"

    def run(clean, robust):
        return {
            "test_clean_acc": np.full(11, clean),
            "test_robust_acc": np.full(11, robust),
            "train_clean_acc": np.full(11, clean),
            "train_robust_acc": np.full(11, robust),
        }

    ordered = {0: run(0.6, 0.1), 25: run(0.6, 0.2), 50: run(0.6, 0.3)}
    assert dc.linearized_gap("d", ordered)["status"] == "pass"
    unordered = {0: run(0.6, 0.3), 25: run(0.6, 0.2), 50: run(0.6, 0.1)}
    assert dc.linearized_gap("d", unordered)["status"] == "fail"
    assert dc.linearized_gap("d", {0: run(0.5, 0.1)})["status"] == "inconclusive"
    # a drop of 0.2 resolves on 100 test points (2 SE = 0.141), not on 20 (0.316)
    assert dc.linearized_gap("d", ordered, n_test=100)["status"] == "pass"
    assert dc.linearized_gap("d", ordered, n_test=20)["status"] == "inconclusive"
