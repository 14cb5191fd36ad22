"""Frequency content of eigenfeature gradient images (main Fig. 3 [INFER]).

The notebook's gradient images ∇ₓL(f⁽ⁱ⁾(x), y) look smooth and object-like for
the top eigenfeatures and noise-like for the tail (experiments.md §4). This module
turns that into a number: the share of an image's spectral power above a radial
frequency, and the top-vs-tail contrast of it against a shuffled eigen-index
order. NumPy only (the claims rule runs in the CPU environment).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def radial_frequency(h: int, w: int) -> np.ndarray:
    """|f| in cycles per pixel of each 2-D DFT bin, (h, w): sqrt(f_y² + f_x²),
    f from `numpy.fft.fftfreq` (0 at DC, 0.5 at Nyquist per axis)."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    return np.sqrt(fy**2 + fx**2)


def high_frequency_fraction(images: np.ndarray, shape: Sequence[int], cut: float):
    """Share of each image's spectral power at radial frequency above `cut`.

    P(f) = Σ_channels |DFT₂(x_c − mean x_c)(f)|² (the mean of every channel is
    removed, so a constant offset carries no weight); the fraction is
    Σ_{|f| > cut} P(f) / Σ_f P(f). For x = a cos(2π f₁·p) + b cos(2π f₂·p) on the
    pixel grid p with grid frequencies |f₁| <= cut < |f₂| it is b² / (a² + b²).

    Args:
        images: (K, d) flattened images, d = prod(shape), row-major (H, W[, C]).
        shape: (H, W) or (H, W, C).
        cut: radial frequency in cycles per pixel, in [0, sqrt(0.5)).

    Returns:
        (K,) fractions in [0, 1]; NaN for an image without variation.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 3):
        raise ValueError(f"image shape must be (H, W) or (H, W, C), got {shape}")
    if not 0 <= cut < np.sqrt(0.5):
        raise ValueError(f"cut must be in [0, 0.707) cycles per pixel, got {cut}")
    x = np.asarray(images, dtype=np.float64)
    x = x.reshape(x.shape[0], shape[0], shape[1], -1)
    x = x - x.mean(axis=(1, 2), keepdims=True)
    power = (np.abs(np.fft.fft2(x, axes=(1, 2))) ** 2).sum(axis=-1)  # (K, H, W)
    high = radial_frequency(shape[0], shape[1]) > cut
    total = power.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = power[:, high].sum(axis=-1) / total
    return np.where(total > 0, frac, np.nan)


def tail_minus_top(
    fractions: np.ndarray, is_tail: np.ndarray, shuffles: np.ndarray
) -> np.ndarray:
    """T = mean fraction of the tail images − of the top images, and the same on
    shuffled eigen-index orders.

    Args:
        fractions: (K,) high-frequency fractions.
        is_tail: (K,) bool, True for the tail features.
        shuffles: (S, K) permutations of range(K): draw s gives image k the
            tail/top label of image shuffles[s, k].

    Returns:
        (1 + S,) T on the eigen-index order, then on each shuffled order.
    """
    labels = np.concatenate([is_tail[None], is_tail[shuffles]]).astype(bool)
    f = np.asarray(fractions, dtype=np.float64)
    tail = (labels * f).sum(-1) / labels.sum(-1)
    top = (~labels * f).sum(-1) / (~labels).sum(-1)
    return tail - top
