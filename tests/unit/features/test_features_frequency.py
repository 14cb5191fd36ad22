"""Tests of ntkadv.features.frequency (against closed forms) and of the frequency
row of finding 2 (passes for smooth top / noisy tail images, not otherwise)."""

from __future__ import annotations

import numpy as np
import pytest

from ntkadv.features import claims, frequency

H, W = 16, 12


def wave(fy: int, fx: int, phase: float = 0.0, channels: int = 1) -> np.ndarray:
    """cos(2π(fy·y/H + fx·x/W) + phase) on the pixel grid, (H, W, channels)."""
    y, x = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    g = np.cos(2 * np.pi * (fy * y / H + fx * x / W) + phase)
    return np.repeat(g[..., None], channels, axis=-1)


def test_radial_frequency_is_the_grid_frequency():
    r = frequency.radial_frequency(H, W)
    assert r.shape == (H, W) and r[0, 0] == 0
    assert r[3, 0] == pytest.approx(3 / H) and r[0, W - 2] == pytest.approx(2 / W)
    assert r[H // 2, W // 2] == pytest.approx(np.hypot(0.5, 0.5))


@pytest.mark.parametrize("channels", [1, 3])
def test_fraction_of_two_sinusoids_is_their_power_share(channels):
    """|f_low| = 1/16 <= 0.25 < |f_high| = hypot(5/16, 5/12): b² / (a² + b²)."""
    a, b = 2.0, 0.7
    img = a * wave(1, 0, 0.3, channels) + b * wave(5, 5, 1.1, channels) + 4.0
    shape = (H, W, channels) if channels > 1 else (H, W)
    out = frequency.high_frequency_fraction(img.reshape(1, -1), shape, 0.25)
    assert out[0] == pytest.approx(b**2 / (a**2 + b**2), abs=1e-12)
    pure = np.stack([wave(5, 5).ravel(), wave(1, 1).ravel(), np.ones(H * W)])
    got = frequency.high_frequency_fraction(pure, (H, W), 0.25)
    np.testing.assert_allclose(got[:2], [1.0, 0.0], atol=1e-12)
    assert np.isnan(got[2])  # a constant image has no power once its mean is gone


def test_fraction_rejects_bad_input():
    with pytest.raises(ValueError, match="image shape"):
        frequency.high_frequency_fraction(np.zeros((1, 8)), (2, 2, 2, 1), 0.2)
    with pytest.raises(ValueError, match="cut"):
        frequency.high_frequency_fraction(np.zeros((1, 4)), (2, 2), 0.8)


def test_tail_minus_top_by_hand():
    f = np.array([0.1, 0.2, 0.6, 0.9])
    is_tail = np.array([False, False, True, True])
    sh = np.array([[2, 3, 0, 1], [0, 2, 1, 3]])
    out = frequency.tail_minus_top(f, is_tail, sh)
    np.testing.assert_allclose(
        out, [0.75 - 0.15, 0.15 - 0.75, (0.2 + 0.9) / 2 - (0.1 + 0.6) / 2]
    )


def _images(seed: int, k: int, smooth_top: bool):
    """k top images (smooth: three random low-frequency waves, if smooth_top; else
    white noise) and k tail images (white noise), flattened (2k, H·W)."""
    rng = np.random.default_rng(seed)

    def smooth():
        return sum(
            wave(int(rng.integers(0, 2)), int(rng.integers(1, 2)), rng.uniform(0, 6))
            for _ in range(3)
        )[..., 0] + 0.1 * rng.normal(size=(H, W))

    top = [smooth() if smooth_top else rng.normal(size=(H, W)) for _ in range(k)]
    tail = [rng.normal(size=(H, W)) for _ in range(k)]
    return np.stack([*top, *tail]).reshape(2 * k, -1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_frequency_row_passes_for_smooth_top_images_only(seed):
    k = 8
    idx = np.r_[np.arange(k), 100 + np.arange(k)]
    good = {
        a: (idx, _images(seed + 10 * j, k, True), (H, W)) for j, a in enumerate("ab")
    }
    row = claims.frequency_claim("toy", good, k=k, cut=0.25, figure="g.png")
    assert row["finding"] == 2 and row["verdict"] == "pass", row
    assert "project extension" in row["statistic"]
    same = {
        a: (idx, _images(seed + 10 * j, k, False), (H, W)) for j, a in enumerate("ab")
    }
    row = claims.frequency_claim("toy", same, k=k, cut=0.25, figure="g.png")
    assert row["verdict"] != "pass", row
    assert abs(row["null"]) < 0.02  # the shuffled orders centre on 0
    flipped = {a: (i, g[::-1], s) for a, (i, g, s) in good.items()}
    row = claims.frequency_claim("toy", flipped, k=k, cut=0.25, figure="g.png")
    assert row["verdict"] == "fail", row
    missing = claims.frequency_claim("toy", {}, k=k, cut=0.25, figure="g.png")
    assert missing["verdict"] == "inconclusive"
