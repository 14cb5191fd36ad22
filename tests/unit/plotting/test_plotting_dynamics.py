"""Tests of ntkadv.plotting.dynamics: every figure builds with the right panels."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from ntkadv.plotting import dynamics as pd


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_distance_heatmaps_one_panel_and_bar_per_regime():
    d = np.random.default_rng(0).uniform(size=(6, 6))
    fig = pd.distance_heatmaps({"a": d, "b": d, "c": d}, "t")
    assert len(fig.axes) == 6  # 3 panels + 3 colour bars
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), d)


@pytest.mark.parametrize("t", [2, 60])
def test_polar_panels_share_the_wedge(t):
    a = np.linspace(0, 0.6, t)
    fig = pd.polar_panels({"x": (a, a), "y": (a / 2, a)}, "t")
    polar = [ax for ax in fig.axes if ax.name == "polar"]
    assert len(polar) == 2
    assert polar[0].get_thetamax() == polar[1].get_thetamax() >= np.degrees(0.6)


def test_kernel_images_share_one_colour_scale_in_the_top_row():
    rng = np.random.default_rng(1)
    ks = {"init": rng.normal(size=(20, 20)), "end": 5 * rng.normal(size=(20, 20))}
    fig = pd.kernel_images(ks, "t", num_classes=2)
    panels = [ax for ax in fig.axes if ax.images]
    top = {ax.images[0].get_clim() for ax in panels[:2]}  # row-major: top row
    assert len(top) == 1
    lo, hi = top.pop()
    assert lo == min(k.min() for k in ks.values())
    assert hi == max(k.max() for k in ks.values())
    own = [ax.images[0].get_clim() for ax in panels[2:4]]
    assert own == [(k.min(), k.max()) for k in ks.values()]


def test_accuracy_and_mass_curves():
    m = {k: np.linspace(0, 1, 5) for k, *_ in pd.ACCURACY_LINES}
    fig = pd.accuracy_curves({"a": m, "b": m, "c": m}, "t", ncols=2, marks={"a": [2]})
    assert sum(ax.axison for ax in fig.axes) == 3
    assert len(fig.axes[0].lines) == 5  # four curves and the linearisation mark
    fig = pd.mass_curves({"p": {"std": m["test_clean_acc"]}}, {"p": "mass"}, "t")
    assert len(fig.axes[0].lines) == 1
    assert pd.regime_label("pgd", 20) == "PGD-20"


def test_mass_curves_draw_every_seed_the_mean_and_the_min_max_band():
    runs = np.array([[0.1, 0.2, 0.4], [0.3, 0.2, 0.6]])
    fig = pd.mass_curves({"p": {"std": runs, "pgd": runs + 1}}, {"p": "mass"}, "t")
    ax = fig.axes[0]
    mean = next(line for line in ax.lines if line.get_label() == "std (2 seeds)")
    np.testing.assert_allclose(mean.get_ydata(), runs.mean(axis=0))
    assert len(ax.lines) == 2 * (1 + 2)  # per regime: mean and two seeds
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == runs.min() and band.max() == runs.max()
    assert "min-max over seeds" in fig._suptitle.get_text()


def test_top_mass_task_shows_the_cnn_mega_dataset_in_main_fig5(tmp_path, monkeypatch):
    """Rule plot_top_mass: main Fig. 5 is the largest k on the dataset trained with
    the CNN of supp. E (CIFAR-10), seeds stacked per regime; supp. Fig. 7 is every
    other (dataset, k)."""
    import logging

    from ntkadv import h5io

    inputs = []
    for ds, model in (("mnist", "mlp"), ("cifar10", "cnn_mega")):
        for regime, attack in (("standard", None), ("pgd", {"steps": 3})):
            for seed in (0, 1):
                path = tmp_path / f"{ds}_{regime}_{seed}.h5"
                spec = {"model": model, "train_attack": attack}
                masses = {f"mass_top{k}": np.full(4, k + seed) for k in (2, 5)}
                attrs = {"dataset": ds, "regime": regime, "run_spec": spec}
                h5io.write(path, masses, attrs)
                inputs.append(str(path))
    drawn = []
    real = pd.mass_curves
    monkeypatch.setattr(
        pd, "mass_curves", lambda panels, *a: drawn.append(panels) or real(panels, *a)
    )
    outputs = {"main": str(tmp_path / "main.png"), "supp": str(tmp_path / "s.png")}
    pd.plot_top_mass(
        {"measures": inputs},
        outputs,
        pd.MassSettings({"mnist": "mnist", "cifar10": "cifar10"}, (2, 5)),
        {},
        logging.getLogger("test"),
    )
    main, supp = drawn
    assert list(main) == ["CIFAR-10: top-5"]
    assert set(main["CIFAR-10: top-5"]) == {"standard", "PGD-3"}
    np.testing.assert_array_equal(main["CIFAR-10: top-5"]["PGD-3"][:, 0], [5, 6])
    assert set(supp) == {"MNIST: top-2", "MNIST: top-5", "CIFAR-10: top-2"}
    assert all((tmp_path / name).is_file() for name in ("main.png", "s.png"))
