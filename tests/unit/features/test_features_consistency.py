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


@pytest.mark.parametrize("shape", [(7,), (3, 12), (2, 4, 30)])
def test_average_ranks_match_scipy(shape):
    rng = np.random.default_rng(len(shape))
    x = rng.integers(0, 4, size=shape) / 3.0  # many ties
    np.testing.assert_array_equal(
        consistency.average_ranks(x), stats.rankdata(x, axis=-1)
    )
    y = rng.normal(size=shape)
    np.testing.assert_array_equal(
        consistency.average_ranks(y), stats.rankdata(y, axis=-1)
    )
    counts = rng.integers(0, 9, size=shape)  # the counting-sort path
    np.testing.assert_array_equal(
        consistency.average_ranks(counts), stats.rankdata(counts, axis=-1)
    )


def test_spearman_rows_and_pair_null_match_scipy():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 5, size=(4, 30)).astype(float)  # ties
    b = rng.integers(0, 5, size=(4, 30)).astype(float)
    ref = [stats.spearmanr(a[j], b[j]).statistic for j in range(4)]
    np.testing.assert_allclose(consistency.spearman_rows(a, b), ref)
    assert np.isnan(consistency.spearman_rows(np.ones(5), np.arange(5.0)))
    meas, null = consistency.pair_spearman(a, b)
    assert meas == pytest.approx(ref[0])
    np.testing.assert_allclose(null, ref[1:])


def test_consistency_table_uses_the_shared_points_and_features():
    rng = np.random.default_rng(6)
    robust = {"a": rng.random((3, 12, 30)) < 0.5, "b": rng.random((3, 10, 8)) < 0.5}
    clean = {k: ~v for k, v in robust.items()}
    index = {"a": np.arange(12), "b": np.arange(10)}
    vecs = {k: np.linalg.qr(rng.normal(size=(15, 3)))[0] for k in robust}
    table = consistency.consistency_table(index, clean, robust, vecs).set_index(
        ["arch_a", "arch_b"]
    )
    assert table.loc[("a", "a"), "n_eval"] == 30
    assert table.loc[("a", "b"), "n_eval"] == 8
    assert table.loc[("a", "b"), "n_features"] == 10
    ra, rb = robust["a"][:, :10, :8].mean(-1), robust["b"].mean(-1)
    ref = stats.spearmanr(ra[0], rb[0]).statistic
    assert table.loc[("a", "b"), "spearman_robustness"] == pytest.approx(ref)
    null = np.mean([stats.spearmanr(ra[j], rb[j]).statistic for j in (1, 2)])
    assert table.loc[("a", "b"), "spearman_robustness_null"] == pytest.approx(null)
    assert table.loc[("a", "a"), "subspace_overlap"] == pytest.approx(1.0)
    ref_overlap = np.mean(np.cos(subspace_angles(vecs["a"], vecs["b"])) ** 2)
    assert table.loc[("b", "a"), "subspace_overlap"] == pytest.approx(ref_overlap)


def test_haar_frames_are_orthonormal_and_random_overlap_is_r_over_n():
    """E ||UᵀW||_F² / r = r / n for independent uniform r-subspaces of R^n (each
    column of W has E (uᵀw)² = 1/n against a fixed unit u)."""
    n, r = 40, 4
    f = consistency.haar_frames(n, r, 3, 0)
    for q in f:
        np.testing.assert_allclose(q.T @ q, np.eye(r), atol=1e-12)
    draws = consistency.random_basis_overlaps(
        ["a", "b", "c"], [("a", "b"), ("a", "c"), ("b", "c")], n, r, 400, 0
    )
    se = draws.std(ddof=1) / np.sqrt(draws.size)
    assert abs(draws.mean() - r / n) < 4 * se
    with pytest.raises(ValueError, match="r <= n"):
        consistency.haar_frames(3, 4, 1, 0)
