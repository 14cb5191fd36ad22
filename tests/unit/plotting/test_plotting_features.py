"""Tests of ntkadv.plotting.features: every figure builds with the right panels."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from ntkadv.plotting import features as pf


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _panel(rng, k=30, p=4):
    return {
        "index": np.arange(k),
        "usefulness": rng.uniform(size=k),
        "robustness": rng.uniform(size=k) / 2,
        "null_usefulness": rng.uniform(size=p * k),
        "null_robustness": rng.uniform(size=p * k) / 3,
        "majority": 0.55,
        "useful_min": 0.65,
        "title": "t",
    }


def test_ru_grid_draws_the_null_cloud_under_the_true_features():
    rng = np.random.default_rng(0)
    fig = pf.ru_grid({"a": _panel(rng), "b": _panel(rng)}, 0.05, "title")
    ax = fig.axes[0]
    null, true = ax.collections[:2]
    assert null.get_offsets().shape == (4 * 30, 2)
    assert true.get_offsets().shape == (30, 2)
    assert null.get_zorder() < true.get_zorder()
    # majority-rate lines (vertical and horizontal) and the significance line
    xs = {
        line.get_xdata()[0]
        for line in ax.lines
        if line.get_xdata()[0] == line.get_xdata()[1]
    }
    assert {0.55, 0.65} <= xs
    assert len([a for a in fig.axes if a.get_title() == "t"]) == 2  # + colour bar


def test_consistency_heatmaps_annotate_value_and_null():
    mat = np.array([[1.0, 0.8], [0.8, 1.0]])
    null = np.array([[1.0, 0.5], [0.5, 1.0]])
    fig = pf.consistency_heatmaps(
        ["fc1", "conv1"], {"rob": (mat, null), "overlap": (mat, None)}, "t"
    )
    heat = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in heat] == ["rob", "overlap"]
    texts = [t.get_text() for t in heat[0].texts]
    assert "0.80\n(0.50)" in texts
    assert "0.80" in [t.get_text() for t in heat[1].texts]


def test_topr_curves_draw_every_series_and_the_null():
    r = np.array([1, 2, 5, 10])
    curves = {key: np.linspace(0, 1, 4) for key in pf.TOPR_KEYS}
    full = {"full_clean": 0.9, "full_fgsm": 0.0, "full_pgd": 0.0}
    fig = pf.topr_curves(r, curves, full, 0.5, "t", null_own=np.zeros((3, 4)))
    ax = fig.axes[0]
    assert len(ax.lines) == 3 + len(pf.TOPR_KEYS) + 1  # null, series, majority
    labels = ax.get_legend_handles_labels()[1]
    assert "majority rate" in labels and "FGSM on f'_r, permuted labels" in labels


def test_single_panel_ru_grid_keeps_title_and_colour_bar_label_inside():
    """One architecture: the long title wraps inside the figure and the colour bar
    is labelled and inside the figure (it was clipped at the right edge)."""
    rng = np.random.default_rng(0)
    title = "NTK features in robustness-usefulness space: cifar2; " * 3
    fig = pf.ru_grid({"a": _panel(rng)}, 0.05, title)
    fig.canvas.draw()
    box = fig.bbox
    suptitle = fig._suptitle.get_window_extent()
    assert box.x0 <= suptitle.x0 and suptitle.x1 <= box.x1
    (bar,) = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert bar.get_ylabel().startswith("eigen-index")
    label = bar.yaxis.label.get_window_extent()
    assert label.x1 <= box.x1 and label.width > 0


def test_consistency_matrices_pivot_the_pair_table_in_arch_order():
    """The long table of ordered pairs becomes (A, A) panels in the table's arch
    order, with the permuted-label null next to the Spearman values only."""
    import pandas

    archs = ["fc2", "conv1", "fc1"]
    rows = [
        {
            "arch_a": a,
            "arch_b": b,
            "spearman_robustness": 10 * i + j,
            "spearman_robustness_null": -(10 * i + j),
            "spearman_usefulness": 1.0,
            "spearman_usefulness_null": 0.0,
            "subspace_overlap": float(i == j),
        }
        for i, a in enumerate(archs)
        for j, b in enumerate(archs)
    ]
    order, panels = pf.consistency_matrices(pandas.DataFrame(rows[::-1]), top=7)
    assert order == archs[::-1]
    rob, null = panels["Spearman(robustness)\n(null: permuted labels)"]
    expected = np.array([[10 * i + j for j in (2, 1, 0)] for i in (2, 1, 0)])
    np.testing.assert_array_equal(rob, expected)
    np.testing.assert_array_equal(null, -expected)
    overlap, none = panels["top-7 eigenspace overlap\n(mean cos², label-free)"]
    np.testing.assert_array_equal(overlap, np.eye(3))
    assert none is None
