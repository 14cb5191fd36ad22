"""Tests of ntkadv.features.scoring.spread_indices (features.spread)."""

from __future__ import annotations

import numpy as np

from ntkadv.features.scoring import spread_indices


def test_spread_covers_the_rest_of_the_spectrum_evenly():
    valid = np.r_[np.arange(0, 50), np.arange(51, 98)]  # 50: excluded, 98-99 null
    out = spread_indices(valid, 10, 5)
    rest = valid[valid >= 10]
    assert out[0] == 10 and out[-1] == 97 and out.size == 5
    assert set(out) <= set(rest) and np.all(np.diff(out) > 0)
    gaps = np.diff(np.searchsorted(rest, out))
    assert gaps.max() - gaps.min() <= 1  # even spacing in position
    np.testing.assert_array_equal(spread_indices(valid, 10, None), rest)
    np.testing.assert_array_equal(spread_indices(valid, 10, 10**6), rest)
    assert spread_indices(valid, 10, 0).size == 0
    assert spread_indices(valid, 200, 3).size == 0
