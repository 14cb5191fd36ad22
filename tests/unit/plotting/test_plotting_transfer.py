"""Tests of ntkadv.plotting.transfer: the curves of supp. Fig. 1a with their
controls, and the gradient-image grid of supp. Fig. 1b."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from ntkadv.plotting import transfer as pt
from ntkadv.transfer.tables import COLUMNS


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _table(seeds=(0, 1), widths=(1000, 10000)):
    rng = np.random.default_rng(0)
    rows = []
    for w in widths:
        for s in seeds:
            for e in (1, 10, 100):
                row = {c: rng.uniform() for c in COLUMNS}
                row.update(dataset="toy", width=w, seed=s, epoch=e)
                rows.append(row)
    other = [{**r, "dataset": "other", "cosine": -5.0} for r in rows]
    return pd.DataFrame(rows + other, columns=COLUMNS)


@pytest.mark.parametrize("seeds", [(0,), (0, 1, 2)])
def test_curves_draw_every_width_and_control(seeds):
    table = _table(seeds)
    fig = pt.transfer_curves_figure(table, "toy", "title", align_epoch=10)
    top, bottom = fig.axes
    assert top.get_xscale() == "log" and bottom.get_xscale() == "log"
    labels = {t.get_text() for t in top.get_legend().get_texts()}
    assert {"width $10^{3}$", "width $10^{4}$", *pt.PAIRS.values()} <= labels
    labels = {t.get_text() for t in bottom.get_legend().get_texts()}
    assert {"own FGSM", "NTK FGSM", "random signs", "NTK $f_t$, own FGSM"} <= labels
    # 2 widths x 3 pairs of cosine curves; the other dataset is not drawn
    data = [line.get_ydata() for line in top.get_lines() if len(line.get_ydata()) == 3]
    assert len(data) == 6 and min(np.min(d) for d in data) > -1
    mean = table[(table.dataset == "toy") & (table.width == 1000)]
    expected = mean.groupby("epoch")["cosine"].mean().to_numpy()
    assert any(np.allclose(d, expected) for d in data)
    assert ("CI across seeds" in fig._suptitle.get_text()) == (len(seeds) > 1)


def test_gradient_grid_rows_are_epochs():
    rng = np.random.default_rng(1)
    columns = {"a": rng.normal(size=(3, 12)), "NTK": rng.normal(size=(3, 12))}
    fig = pt.plot_gradient_grid(columns, [1, 10, 100], (2, 2, 3), rng.uniform(size=12))
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 1 + 2 * 3
    image = pt.normalise_image(columns["a"][0], (2, 2, 3))
    assert image.min() == 0 and image.max() == 1 and image.shape == (2, 2, 3)
