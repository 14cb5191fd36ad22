"""Tests of ntkadv.features.consistency against scipy (subspace angles, Spearman)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.linalg import subspace_angles

from ntkadv.features import consistency


@pytest.mark.parametrize("r", [1, 3, 5])
def test_subspace_overlap_against_scipy_angles(r):
    rng = np.random.default_rng(r)
    va = np.linalg.qr(rng.normal(size=(20, r)))[0]
    vb = np.linalg.qr(rng.normal(size=(20, r)))[0]
    ref = np.sort(np.cos(subspace_angles(va, vb)))[::-1]
    np.testing.assert_allclose(consistency.subspace_cosines(va, vb), ref, atol=1e-10)
    rot = np.linalg.qr(rng.normal(size=(r, r)))[0]
    assert consistency.subspace_overlap(va, va @ rot) == pytest.approx(1.0)
    assert consistency.spearman(np.arange(5), -(np.arange(5.0) ** 3)) == pytest.approx(
        -1.0
    )


def test_consistency_table_uses_the_shared_points():
    rng = np.random.default_rng(6)
    adv = {"a": rng.random((12, 30)) < 0.5, "b": rng.random((12, 8)) < 0.5}
    clean = {k: ~v for k, v in adv.items()}
    vecs = {k: np.linalg.qr(rng.normal(size=(15, 3)))[0] for k in adv}
    table = consistency.consistency_table(adv, clean, vecs).set_index(
        ["arch_a", "arch_b"]
    )
    assert (
        table.loc[("a", "a"), "n_eval"] == 30 and table.loc[("a", "b"), "n_eval"] == 8
    )
    ref = stats.spearmanr(adv["a"][:, :8].mean(1), adv["b"].mean(1)).statistic
    assert table.loc[("a", "b"), "spearman_robustness"] == pytest.approx(ref)
    assert table.loc[("a", "a"), "subspace_overlap"] == pytest.approx(1.0)
    ref_overlap = np.mean(np.cos(subspace_angles(vecs["a"], vecs["b"])) ** 2)
    assert table.loc[("b", "a"), "subspace_overlap"] == pytest.approx(ref_overlap)
