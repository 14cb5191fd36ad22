"""Tests of ntkadv.kernels.blocked: blocked (padded, jitted, mirrored) kernel Grams."""

from __future__ import annotations

import chex
import jax.numpy as jnp
import numpy as np
import pytest

from _shared import SPECS
from ntkadv.kernels import blocked
from ntkadv.kernels.analytic import kernel_fn_from_spec

SHAPE = (5, 5, 2)  # tiny "images" (H, W, C)
# Θ near x = x' goes through arccos/arctan2 of a cosine within rounding of 1, so two
# float64 evaluations of a diagonal entry with different block shapes agree to ~1e-8
# relative, not 1e-15 (see ntkadv.kernels.analytic._safe_arccos).
KINK_RTOL = 1e-7


def _x(n, seed=0, shape=SHAPE):
    return np.random.default_rng(seed).uniform(size=(n, *shape))


@pytest.mark.parametrize("arch", sorted(SPECS))
def test_gram_symmetric_psd_finite(arch):
    x = _x(12)
    gram = blocked.ntk_gram_blocked(kernel_fn_from_spec(SPECS[arch]), x, None, 5)
    chex.assert_shape(gram, (12, 12))
    chex.assert_tree_all_finite(gram)
    assert gram.dtype == np.float64
    np.testing.assert_array_equal(gram, gram.T)
    eig = np.linalg.eigvalsh(gram)
    assert eig.min() >= -1e-10 * eig.max()
    assert np.all(np.diag(gram) > 0)


@pytest.mark.parametrize("arch", ["fc3", "conv1", "myrtle1", "twolayer"])
@pytest.mark.parametrize("block_size", [1, 3, 50])
@pytest.mark.parametrize("symmetric", [True, False])
def test_blocked_equals_unblocked(arch, block_size, symmetric):
    """Blocked (padded, jitted, mirrored) == one unjitted kernel_fn call."""
    kernel_fn = kernel_fn_from_spec(SPECS[arch])
    x1 = _x(7, seed=1)
    x2 = None if symmetric else _x(9, seed=2)
    ref = np.asarray(kernel_fn(x1, x1 if x2 is None else x2))
    got = blocked.ntk_gram_blocked(kernel_fn, x1, x2, block_size)
    chex.assert_shape(got, ref.shape)
    np.testing.assert_allclose(got, ref, rtol=KINK_RTOL, atol=0)
    if symmetric:
        np.testing.assert_array_equal(got, got.T)


def test_blocked_writes_into_given_array():
    kernel_fn = kernel_fn_from_spec(SPECS["fc1"])
    x1, x2 = _x(6, 3), _x(4, 4)
    out = np.full((6, 4), np.nan)
    ret = blocked.ntk_gram_blocked(kernel_fn, x1, x2, 3, out=out)
    assert ret is out
    np.testing.assert_allclose(out, kernel_fn(x1, x2), rtol=1e-12)
    with pytest.raises(ValueError):
        blocked.ntk_gram_blocked(kernel_fn, x1, x2, 3, out=np.empty((4, 6)))


@pytest.mark.parametrize("n", [1, 6, 7])
@pytest.mark.parametrize("block_size", [1, 3, 10])
def test_block_starts_cover_the_range_once(n, block_size):
    starts = blocked.block_starts(n, block_size)
    covered = [i for i0, i1 in starts for i in range(i0, i1)]
    assert covered == list(range(n))
    assert all(0 < i1 - i0 <= block_size for i0, i1 in starts)
    with pytest.raises(ValueError):
        blocked.block_starts(n, 0)


def test_pad_rows_repeats_the_last_row():
    x = jnp.arange(6.0).reshape(3, 2)
    padded = blocked.pad_rows(x, 5)
    chex.assert_shape(padded, (5, 2))
    np.testing.assert_array_equal(padded[:3], x)
    np.testing.assert_array_equal(padded[3:], np.stack([x[-1], x[-1]]))
    assert blocked.pad_rows(x, 3) is x
