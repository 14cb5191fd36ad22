"""Tests of ntkadv.spectra.eigh: reconstruction, order and clipping of the spectrum."""

from __future__ import annotations

import chex
import numpy as np
import pytest

from ntkadv.spectra import eigh


def _psd(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d))
    return x @ x.T / d + 0.1 * np.eye(n)


@pytest.mark.parametrize("n", [5, 40])
@pytest.mark.parametrize("seed", [0, 1])
def test_reconstructs_and_orders(n, seed):
    k = _psd(n, 2 * n, seed)
    spec = eigh.eigendecompose(k)
    chex.assert_shape(spec.eigvals, (n,))
    chex.assert_shape(spec.eigvecs, (n, n))
    assert spec.n_clipped == 0
    assert np.all(np.diff(spec.eigvals) <= 0)
    np.testing.assert_allclose(eigh.reconstruct(spec), k, atol=1e-12)
    np.testing.assert_allclose(spec.eigvecs.T @ spec.eigvecs, np.eye(n), atol=1e-12)
    # independent: eigenvalues are the roots of the characteristic polynomial,
    # whose sum is the trace and product the determinant
    np.testing.assert_allclose(spec.eigvals.sum(), np.trace(k), rtol=1e-12)
    np.testing.assert_allclose(
        np.log(spec.eigvals).sum(), np.linalg.slogdet(k)[1], rtol=1e-10
    )


@pytest.mark.parametrize("rank", [1, 3])
def test_singular_matrix_is_clipped_not_nan(rank):
    n = 12
    x = np.random.default_rng(2).normal(size=(n, rank))
    k = x @ x.T  # rank-deficient, exact zeros become +-1e-15 noise
    spec = eigh.eigendecompose(k)
    chex.assert_tree_all_finite((spec.eigvals, spec.eigvecs))
    floor = eigh.clip_floor(np.linalg.eigvalsh(k))
    assert spec.n_clipped == n - rank
    assert np.all(spec.eigvals >= floor * (1 - 1e-9)) and floor > 0
    assert np.all(np.isfinite(1.0 / spec.eigvals))
    # the clipped reconstruction differs from K only at the floor level
    np.testing.assert_allclose(eigh.reconstruct(spec), k, atol=n * floor + 1e-12)


def test_indefinite_matrix_counts_negative_eigenvalues():
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    lam = np.array([5.0, 2.0, 1.0, 1e-3, -0.5, -2.0])
    k = (q * lam) @ q.T
    with pytest.raises(eigh.GramIntegrityError, match="positive semi-definite"):
        eigh.eigendecompose(k)
    spec = eigh.eigendecompose(k, neg_rtol=None)
    assert spec.n_clipped == 2
    np.testing.assert_allclose(spec.eigvals[:4], lam[:4], rtol=1e-12)
    np.testing.assert_allclose(spec.eigvals[4:], eigh.clip_floor(lam), rtol=1e-9)
    chex.assert_tree_all_finite(spec.eigvecs)


def test_zero_matrix_and_bad_input():
    spec = eigh.eigendecompose(np.zeros((4, 4)))
    assert spec.n_clipped == 4
    assert np.all(np.isfinite(1.0 / spec.eigvals))
    with pytest.raises(ValueError):
        eigh.eigendecompose(np.full((3, 3), np.nan))
    with pytest.raises(ValueError):
        eigh.eigendecompose(np.ones((3, 4)))


def test_asymmetric_rounding_is_symmetrised():
    k = _psd(8, 16, 4)
    noisy = k + 1e-14 * np.triu(np.ones_like(k), 1)
    spec = eigh.eigendecompose(noisy)
    np.testing.assert_allclose(eigh.reconstruct(spec), k, atol=1e-12)


def test_tampered_kernel_gram_is_refused_with_the_source_named():
    """One entry of a real-looking PSD Gram multiplied by 50 (valid HDF5, wrong
    numbers) breaks symmetry; the mirrored tamper breaks positive semi-definiteness."""
    x = np.random.default_rng(0).uniform(size=(30, 5))
    k = x @ x.T + 0.1
    bad = k.copy()
    bad[3, 7] *= 50
    with pytest.raises(eigh.GramIntegrityError, match=r"gram.h5.*not symmetric"):
        eigh.eigendecompose_with_info(bad, source="gram.h5")
    bad[7, 3] *= 50
    with pytest.raises(eigh.GramIntegrityError, match=r"gram.h5.*semi-definite"):
        eigh.eigendecompose_with_info(bad, source="gram.h5")
    spec, info = eigh.eigendecompose_with_info(k)  # the untouched one passes
    assert info["raw_min"] > -1e-12 * info["raw_max"]
