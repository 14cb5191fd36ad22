"""Eigendecomposition of the NTK Gram matrix (Tsilivis & Kempe 2022, supp. App. D.1).

Θ(X, X) = V diag(λ) Vᵀ with λ in descending order. The spectrum drives the kernel
predictor f_t (supp. Eq. 3, `ntkadv.spectra.predictor`) and the eigen-features
f^{(i)}(x) = λ_i⁻¹ Θ(x, X) v_i v_iᵀ Y (supp. Eq. 31).

Numerics: the decomposition is always done in float64 with NumPy (LAPACK ``syevd``),
whatever the jax x64 setting. Its backward error is about n·ε_mach·‖K‖₂, so
eigenvalues below that level are indistinguishable from zero. They (and any
negative eigenvalues of an indefinite input) are clipped up to the floor
``floor = max(rtol·λ_max, atol)`` with ``rtol = n·ε_mach`` by default, and counted
in ``Spectrum.n_clipped``. The result is finite for every finite symmetric input,
so 1/λ never produces inf or NaN downstream.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

#: Largest accepted asymmetry max|K − Kᵀ| / max|K|: the Gram caches are written
#: exactly symmetric (blocks mirrored), so anything above round-off is corruption.
SYM_RTOL = 1e-10
#: Most negative accepted raw eigenvalue, relative to λ_max: round-off of a PSD
#: float64 kernel is ~n·ε·λ_max (2e-13 at n = 1000); a tampered or non-PSD matrix
#: has eigenvalues of order λ_max below zero.
NEG_RTOL = 1e-8


class GramIntegrityError(ValueError):
    """A Gram matrix that cannot be a (PSD, symmetric) NTK: corrupt or not a kernel."""


#: Absolute floor used when the matrix is (numerically) zero.
ATOL = float(np.finfo(np.float64).tiny) ** 0.5  # ~1.5e-154: 1/atol stays finite


class Spectrum(NamedTuple):
    """Eigendecomposition of a symmetric PSD Gram matrix.

    Attributes:
        eigvals: (n,) float64, descending, every entry >= the clipping floor (> 0).
        eigvecs: (n, n) float64, orthonormal columns; column i belongs to eigvals[i].
        n_clipped: how many eigenvalues were raised to the floor (tiny or negative).
    """

    eigvals: np.ndarray
    eigvecs: np.ndarray
    n_clipped: int


def clip_floor(eigvals: np.ndarray, rtol: float | None = None) -> float:
    """The clipping floor ``max(rtol·max(λ_max, 0), ATOL)``.

    Args:
        eigvals: (n,) raw eigenvalues (any order).
        rtol: relative tolerance; default ``n·ε_mach`` (float64), the backward error
            level of a symmetric eigensolver.

    Returns:
        The floor, a positive float.
    """
    n = eigvals.shape[0]
    if rtol is None:
        rtol = n * float(np.finfo(np.float64).eps)
    top = float(np.max(eigvals)) if n else 0.0
    return max(rtol * max(top, 0.0), ATOL)


def eigendecompose(
    k: np.ndarray, rtol: float | None = None, neg_rtol: float | None = NEG_RTOL
) -> Spectrum:
    """Θ(X, X) = V diag(λ) Vᵀ, descending, with tiny/negative eigenvalues clipped.

    Args:
        k: (n, n) symmetric Gram matrix Θ(X, X) (symmetrised as (K + Kᵀ)/2 first).
        rtol: relative clipping tolerance (see `clip_floor`).
        neg_rtol: fail if a raw eigenvalue is below −neg_rtol·λ_max (None: clip
            any negative eigenvalue, for matrices that need not be kernels).

    Returns:
        `Spectrum` with eigvals (n,) descending and >= floor, eigvecs (n, n), and the
        number of clipped eigenvalues.

    Raises:
        ValueError: if `k` is not square or holds non-finite values.
        GramIntegrityError: see `eigendecompose_with_info`.
    """
    return eigendecompose_with_info(k, rtol, neg_rtol=neg_rtol)[0]


def eigendecompose_with_info(
    k: np.ndarray,
    rtol: float | None = None,
    source: str = "Gram matrix",
    neg_rtol: float | None = NEG_RTOL,
) -> tuple[Spectrum, dict[str, float]]:
    """`eigendecompose` plus diagnostics {floor, raw_min, raw_max} for logging.

    Args:
        k: (n, n) Gram matrix.
        rtol: relative clipping tolerance (see `clip_floor`).
        source: what `k` is (e.g. its file), named in errors.
        neg_rtol: tolerance of negative eigenvalues (None: no check).

    Raises:
        ValueError: not square or not finite.
        GramIntegrityError: asymmetric beyond `SYM_RTOL`, or a raw eigenvalue below
            −`NEG_RTOL`·λ_max (clipping of round-off negatives stays, and is logged
            by the caller from `info`).
    """
    k = np.asarray(k, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise ValueError(f"{source}: must be square, got shape {k.shape}")
    if not np.all(np.isfinite(k)):
        raise ValueError(f"{source}: holds non-finite values")
    scale = float(np.abs(k).max()) if k.size else 0.0
    asym = float(np.abs(k - k.T).max()) / scale if scale > 0 else 0.0
    if neg_rtol is not None and asym > SYM_RTOL:
        i, j = np.unravel_index(int(np.argmax(np.abs(k - k.T))), k.shape)
        raise GramIntegrityError(
            f"{source}: not symmetric (|K - K^T| / max|K| = {asym:.3g} at [{i}, {j}],"
            f" tolerance {SYM_RTOL:g}): the file is corrupt; delete it and rerun"
        )
    sym = 0.5 * (k + k.T)
    eigvals, eigvecs = np.linalg.eigh(sym)  # ascending
    eigvals, eigvecs = eigvals[::-1].copy(), eigvecs[:, ::-1].copy()
    floor = clip_floor(eigvals, rtol)
    info = {
        "floor": floor,
        "raw_min": float(eigvals[-1]) if eigvals.size else 0.0,
        "raw_max": float(eigvals[0]) if eigvals.size else 0.0,
    }
    top = max(info["raw_max"], 0.0)
    if neg_rtol is not None and eigvals.size and info["raw_min"] < -neg_rtol * top:
        raise GramIntegrityError(
            f"{source}: not positive semi-definite (most negative eigenvalue "
            f"{info['raw_min']:.4g}, lambda_max {info['raw_max']:.4g}; tolerance "
            f"-{neg_rtol:g} lambda_max): the kernel is corrupt or not an NTK"
        )
    clipped = eigvals < floor
    eigvals = np.where(clipped, floor, eigvals)
    spec = Spectrum(eigvals=eigvals, eigvecs=eigvecs, n_clipped=int(clipped.sum()))
    return spec, info


def reconstruct(spectrum: Spectrum | tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """V diag(λ) Vᵀ (n, n) from a spectrum (eigvals, eigvecs)."""
    eigvals, eigvecs = spectrum[0], spectrum[1]
    return (eigvecs * eigvals) @ eigvecs.T


def condition_number(spectrum: Spectrum | tuple[np.ndarray, np.ndarray]) -> float:
    """λ_max / λ_min of the (clipped) spectrum."""
    eigvals = spectrum[0]
    return float(eigvals[0] / eigvals[-1])
