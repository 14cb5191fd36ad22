"""Tests of ntkadv.dynamics.measures against brute-force NumPy and closed forms."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from ntkadv import h5io
from ntkadv.dynamics import measures as dy


def _psd(rng, n, rank=None):
    a = rng.normal(size=(n, rank or n))
    return a @ a.T


def _series(rng, t, n):
    """A drifting series of PSD kernels K_t = A_t A_t^T."""
    a = rng.normal(size=(n, n))
    out = []
    for _ in range(t):
        a = a + 0.3 * rng.normal(size=(n, n))
        out.append(a @ a.T)
    return np.stack(out)


def _brute_top(k, m):
    """Top-m part of a PSD matrix from its SVD (independent of eigh)."""
    u, s, _ = np.linalg.svd(k)
    return (u[:, :m] * s[:m]) @ u[:, :m].T


# ------------------------------------------------------------------ reshape ordering


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("b", [2, 5])
def test_kernel_matrix_is_output_block_major_gram(b, k):
    """M[a*B+i, b*B+j] = <J_a(x_i), J_b(x_j)> for ntk[i,j,a,b] built from J."""
    rng = np.random.default_rng(0)
    jac = rng.normal(size=(b, k, 7))  # (example, output, parameter)
    ntk = np.einsum("iap,jbp->ijab", jac, jac)
    rows = jac.transpose(1, 0, 2).reshape(k * b, 7)  # row a*B + i
    np.testing.assert_allclose(dy.kernel_matrix(ntk), rows @ rows.T, rtol=1e-12)
    # and explicitly, entry by entry
    m = dy.kernel_matrix(ntk)
    for a in range(k):
        for c in range(k):
            for i in range(b):
                for j in range(b):
                    assert m[a * b + i, c * b + j] == pytest.approx(ntk[i, j, a, c])


def test_kernel_matrix_rejects_bad_shape():
    with pytest.raises(ValueError):
        dy.kernel_matrix(np.zeros((2, 3, 4, 4)))


# ------------------------------------------------------------------ similarity


@pytest.mark.parametrize("n", [3, 8])
def test_similarity_matches_trace_formula(n):
    rng = np.random.default_rng(n)
    k1, k2 = _psd(rng, n), rng.normal(size=(n, n))
    brute = np.trace(k1 @ k2.T) / np.sqrt(np.trace(k1 @ k1.T) * np.trace(k2 @ k2.T))
    assert dy.kernel_similarity(k1, k2) == pytest.approx(brute, rel=1e-12)
    assert dy.kernel_distance(k1, k2) == pytest.approx(1 - brute, rel=1e-12)


@pytest.mark.parametrize("scale", [1e-3, 1.0, 7.5])
def test_similarity_is_scale_invariant_and_one_on_itself(scale):
    rng = np.random.default_rng(1)
    k = _psd(rng, 6)
    assert dy.kernel_similarity(k, scale * k) == pytest.approx(1.0, abs=1e-12)
    assert dy.kernel_similarity(k, -k) == pytest.approx(-1.0, abs=1e-12)


@pytest.mark.parametrize("block", [1, 3, 16])
@pytest.mark.parametrize("t", [1, 7])
def test_frobenius_gram_and_distance_matrix_vs_loops(t, block):
    rng = np.random.default_rng(t)
    ks = _series(rng, t, 5)
    gram = dy.frobenius_gram(ks, block=block)
    dist = dy.distance_matrix(gram)
    for s in range(t):
        for u in range(t):
            assert gram[s, u] == pytest.approx(np.trace(ks[s] @ ks[u].T), rel=1e-10)
            assert dist[s, u] == pytest.approx(
                dy.kernel_distance(ks[s], ks[u]), abs=1e-10
            )
    np.testing.assert_allclose(np.diag(dist), 0.0, atol=1e-12)
    if t > 1:
        np.testing.assert_allclose(
            dy.consecutive_distance(dist),
            [dy.kernel_distance(ks[s], ks[s + 1]) for s in range(t - 1)],
            atol=1e-10,
        )


def test_frobenius_gram_reads_an_hdf5_dataset(tmp_path):
    rng = np.random.default_rng(2)
    ks = _series(rng, 5, 4).astype(np.float32)
    h5io.write(tmp_path / "k.h5", {"kernels": ks})
    with h5py.File(tmp_path / "k.h5", "r") as f:
        from_file = dy.frobenius_gram(f["kernels"], block=2)
        measures = dy.series_measures(f["kernels"], num_classes=2, space_k=2)
    np.testing.assert_allclose(from_file, dy.frobenius_gram(ks), rtol=1e-12)
    np.testing.assert_allclose(
        measures["fro_norm"], np.linalg.norm(ks.astype(np.float64), axis=(1, 2))
    )


# ------------------------------------------------------------------ spectra


@pytest.mark.parametrize("k", [1, 4, 10])
def test_top_bottom_projections_and_mass(k):
    rng = np.random.default_rng(k)
    kern = _psd(rng, 10)
    w, v = dy.eigh_descending(kern)
    assert np.all(np.diff(w) <= 0)
    top, bottom = dy.project_top(w, v, k), dy.project_bottom(w, v, k)
    np.testing.assert_allclose(top + bottom, kern, atol=1e-9)
    np.testing.assert_allclose(top, _brute_top(kern, k), atol=1e-8)
    lam = np.sort(np.linalg.eigvalsh(kern))[::-1]
    brute_mass = np.sum(lam[:k] ** 2) / np.sum(lam**2)
    assert dy.top_mass(w, k) == pytest.approx(brute_mass, rel=1e-10)
    # identity: mass_k = ||top-k part||_F^2 / ||K||_F^2
    assert dy.top_mass(w, k) == pytest.approx(
        np.sum(top**2) / np.sum(kern**2), rel=1e-8
    )


@pytest.mark.parametrize("num_classes", [2, 5])
def test_diagonal_block_fraction(num_classes):
    rng = np.random.default_rng(3)
    b = 4
    a = _psd(rng, b)
    kron = np.kron(np.eye(num_classes), a)  # Theta (x) I_k in block-major order
    assert dy.diagonal_block_fraction(kron, num_classes) == pytest.approx(1.0)
    full = _psd(rng, num_classes * b)
    diag = sum(
        np.sum(full[c * b : (c + 1) * b, c * b : (c + 1) * b] ** 2)
        for c in range(num_classes)
    )
    assert dy.diagonal_block_fraction(full, num_classes) == pytest.approx(
        diag / np.sum(full**2)
    )


# ------------------------------------------------------------------ polar dynamics


@pytest.mark.parametrize("space_k", [2, 5])
def test_series_measures_vs_brute_force(space_k):
    rng = np.random.default_rng(space_k)
    t, n = 6, 12
    ks = _series(rng, t, n)
    out = dy.series_measures(ks, num_classes=3, mass_ks=(2, 4), space_k=space_k)
    views = {
        "full": list(ks),
        "top": [_brute_top(k, space_k) for k in ks],
        "bottom": [k - _brute_top(k, space_k) for k in ks],
    }
    for space, series in views.items():
        r = np.array([np.linalg.norm(k - series[0]) for k in series])
        cos = np.array(
            [
                np.trace(k @ series[0].T)
                / np.sqrt(np.trace(k @ k.T) * np.trace(series[0] @ series[0].T))
                for k in series
            ]
        )
        np.testing.assert_allclose(out[f"radius_{space}"], r / r[-1], atol=1e-7)
        np.testing.assert_allclose(
            out[f"angle_{space}"], np.arccos(np.clip(cos, -1, 1)), atol=1e-5
        )
    assert out["radius_full"][0] == 0 and out["radius_full"][-1] == pytest.approx(1)
    for m in (2, 4):
        lam = [np.sort(np.linalg.eigvalsh(k))[::-1] for k in ks]
        brute = [np.sum(x[:m] ** 2) / np.sum(x**2) for x in lam]
        np.testing.assert_allclose(out[f"mass_top{m}"], brute, rtol=1e-9)
    np.testing.assert_allclose(out["trace"], np.trace(ks, axis1=1, axis2=2))
    np.testing.assert_allclose(out["max_abs"], np.abs(ks).max(axis=(1, 2)))


def test_constant_series_has_no_nan():
    ks = np.stack([np.eye(4)] * 3)
    out = dy.series_measures(ks, num_classes=2, mass_ks=(1,), space_k=1)
    np.testing.assert_allclose(out["radius_full"], 0.0)  # no movement: no NaN
    np.testing.assert_allclose(out["angle_full"], 0.0, atol=1e-7)
