"""Figures of the kernel-dynamics stage (paper Sec. 5, supp. App. E and E.1).

* :func:`distance_heatmaps`: epoch x epoch kernel distance 1 - sim(K_s, K_t), one
  panel per training regime (main Fig. 4 [INFER]).
* :func:`mass_curves`: concentration of norm on the top-k eigenvalues against the
  epoch, one panel per (dataset, k) (main Fig. 5, supp. Fig. 7).
* :func:`polar_panels`: polar dynamics (angle, normalised radius) relative to the
  initial kernel, coloured by epoch (main Fig. 6, supp. Fig. 8, bottom space).
* :func:`kernel_images`: eNTK matrices on a shared colour scale (supp. Fig. 9 and
  the main-text kernel figure).
* :func:`accuracy_curves`: clean / PGD train and test accuracy per epoch, one panel
  per run (supp. Figs 6 and 10).

The drawing functions take plain arrays and return a matplotlib Figure (no file
I/O and no math beyond display choices); the rule tasks at the end
(`plot_kernel_distance`, `plot_top_mass`, `plot_polar_dynamics`,
`plot_kernel_images`, `plot_training_curves`, `plot_linearized_training`) read the
rule's inputs, draw and save.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import cm  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ntkadv import h5io  # noqa: E402
from ntkadv.dynamics.records import METRICS  # noqa: E402
from ntkadv.plotting import save_figure, wrap_title  # noqa: E402

REGIME_LABELS = {"standard": "standard", "fgsm": "FGSM", "pgd": "PGD"}
REGIME_COLORS = {"standard": "#1f3b73", "fgsm": "#e08a1e", "pgd": "#b2182b"}


def regime_label(regime: str, pgd_steps: int | None = None) -> str:
    """Display name of a regime ('PGD-20' when the step count is known)."""
    if regime == "pgd" and pgd_steps:
        return f"PGD-{pgd_steps}"
    return REGIME_LABELS.get(regime, regime)


def dataset_label(dataset: str, source: str) -> str:
    """Display name of config dataset `dataset` drawn from `source`: the source's
    label in the data-source registry (`ntkadv.data.sources`), so any config name of
    an MNIST subset reads "MNIST"; a user file's dataset keeps its name."""
    from ntkadv.data.sources import dataset_label as label

    return label(dataset, source)


def distance_heatmaps(
    distances: Mapping[str, np.ndarray], title: str, cmap: str = "magma"
) -> plt.Figure:
    """One heatmap of ``D[s, t] = 1 - sim(K_s, K_t)`` per regime (epoch 0 at bottom).

    Args:
        distances: panel title -> ``(T, T)`` distance matrix.
        title: figure title.
        cmap: colour map (the authors used 'tab20c'; a sequential map is easier
            to read). Each panel has its own colour bar, as in the authors' code.
    """
    n = len(distances)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.8), squeeze=False)
    for ax, (name, dist) in zip(axes[0], distances.items(), strict=True):
        t = dist.shape[0] - 1
        im = ax.imshow(
            dist,
            origin="lower",
            cmap=cmap,
            extent=(-0.5, t + 0.5, -0.5, t + 0.5),
            interpolation="nearest",
        )
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.set_ylabel("epoch")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="1 - sim")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def mass_curves(
    panels: Mapping[str, Mapping[str, np.ndarray]],
    ylabels: Mapping[str, str],
    title: str,
    colors: Mapping[str, str] | None = None,
) -> plt.Figure:
    """Top-k mass against the epoch, one colour per regime, one panel per key.

    With several seeds the regime is drawn as its seed mean (thick line), each seed
    (thin line) and the min-max band over seeds (shaded): the claims' standard
    error of the regime difference is this seed-to-seed spread, so the band shows
    how far apart the regimes must be to count.

    Args:
        panels: panel title -> {line label -> (T,) mass of one seed, or (S, T)
            masses of S seeds}.
        ylabels: panel title -> y-axis label.
        title: figure title.
        colors: line label -> colour.
    """
    n = len(panels)
    width = max(4.6 * n, 6.4)
    fig, axes = plt.subplots(
        1, n, figsize=(width, 4.0), squeeze=False, layout="constrained"
    )
    n_seeds = 1
    for ax, (name, lines) in zip(axes[0], panels.items(), strict=True):
        for label, mass in lines.items():
            color = (colors or {}).get(label)
            runs = np.atleast_2d(np.asarray(mass, dtype=float))
            n_seeds = max(n_seeds, runs.shape[0])
            epochs = np.arange(runs.shape[1])
            seeds = f" ({runs.shape[0]} seeds)" if runs.shape[0] > 1 else ""
            ax.plot(epochs, runs.mean(axis=0), lw=2, label=label + seeds, color=color)
            if runs.shape[0] > 1:
                ax.fill_between(
                    epochs, runs.min(axis=0), runs.max(axis=0), color=color,
                    alpha=0.18, lw=0,
                )  # fmt: skip
                for run in runs:
                    ax.plot(epochs, run, lw=0.7, alpha=0.6, color=color)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabels[name])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if n_seeds > 1:
        title += "\nthick: seed mean; thin: each seed; band: min-max over seeds"
    fig.suptitle(wrap_title(title, width, 12))
    return fig


def polar_panels(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    title: str,
    segment: int | None = None,
    cmap: str = "plasma",
    min_wedge: float = 0.35,
) -> plt.Figure:
    """Polar dynamics: angle arccos sim(K_t, K_0) and radius r_t / r_E, per regime.

    The curve is drawn in segments of `segment` epochs coloured by epoch (the
    authors: 5 epochs, plasma). All panels share the angular wedge [0, max angle]
    (at least `min_wedge` radians so that small rotations stay legible); the radial
    range of each panel is [0, max(1, its largest radius)].

    Args:
        curves: panel title -> (angle (T,) radians, normalised radius (T,)).
        title: figure title.
        segment: epochs per coloured segment (default ~T/40, at least 1).
    """
    n = len(curves)
    fig, axes = plt.subplots(
        1,
        n,
        figsize=(4.3 * n + 0.8, 4.6),
        subplot_kw={"projection": "polar"},
        squeeze=False,
    )
    amax = max(float(np.nanmax(a)) for a, _ in curves.values())
    amax = max(amax * 1.08, min_wedge)
    t_max = max(len(a) for a, _ in curves.values()) - 1
    norm = Normalize(0, max(t_max, 1))
    colors = matplotlib.colormaps[cmap]
    for ax, (name, (angle, radius)) in zip(axes[0], curves.items(), strict=True):
        t = len(angle)
        step = segment or max(1, t // 40)
        for j in range(0, t - 1, step):
            sl = slice(j, min(j + step + 1, t))
            ax.plot(angle[sl], radius[sl], color=colors(norm(j)), lw=2)
        ax.set_thetamin(0)
        ax.set_thetamax(np.degrees(amax))
        ax.set_rlim(0, max(1.05, float(np.nanmax(radius)) * 1.05))
        ticks = np.linspace(0, amax, 5)
        ax.set_xticks(ticks, [f"{v:.2f}" for v in ticks], fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_title(f"{name}\n(angle in rad; radius / final radius)", fontsize=9)
    sm = cm.ScalarMappable(norm=norm, cmap=cmap)
    bar = fig.colorbar(sm, ax=list(axes[0]), fraction=0.02, pad=0.04, label="epoch")
    if t_max <= 20:
        bar.set_ticks(range(0, t_max + 1, max(1, t_max // 10)))
    fig.suptitle(title)
    return fig


def kernel_images(
    kernels: Mapping[str, np.ndarray],
    title: str,
    num_classes: int,
    cmap: str = "viridis",
) -> plt.Figure:
    """eNTK matrices side by side; grid lines at the output blocks.

    Top row: one shared colour scale (the paper's comparison of magnitudes).
    Bottom row: each kernel on its own scale (its structure).

    Args:
        kernels: panel title -> ``(kB, kB)`` output-block-major kernel.
        title: figure title.
        num_classes: k, for the block grid.
    """
    vmin = min(float(k.min()) for k in kernels.values())
    vmax = max(float(k.max()) for k in kernels.values())
    n = len(kernels)
    fig, axes = plt.subplots(2, n, figsize=(4.2 * n + 1.0, 8.0), squeeze=False)
    shared = None
    for col, (name, kern) in enumerate(kernels.items()):
        for row, (lo, hi) in enumerate(((vmin, vmax), (kern.min(), kern.max()))):
            ax = axes[row, col]
            im = ax.imshow(kern, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
            b = kern.shape[0] // num_classes
            for edge in range(b, kern.shape[0], b):
                ax.axhline(edge - 0.5, color="white", lw=0.3, alpha=0.5)
                ax.axvline(edge - 0.5, color="white", lw=0.3, alpha=0.5)
            ticks = np.arange(num_classes) * b + b / 2 - 0.5
            labels = [str(c) for c in range(num_classes)]
            ax.set_xticks(ticks, labels, fontsize=7)
            ax.set_yticks(ticks, labels, fontsize=7)
            ax.set_xlabel("output block b", fontsize=8)
            ax.set_ylabel("output block a", fontsize=8)
            if row == 0:
                ax.set_title(f"{name}\n(shared scale)", fontsize=10)
                shared = im
            else:
                ax.set_title("own scale", fontsize=9)
                fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.colorbar(shared, ax=list(axes[0]), fraction=0.02, pad=0.02)
    fig.suptitle(title)
    return fig


ACCURACY_LINES = (
    ("train_clean_acc", "train clean", "#1f77b4", "-"),
    ("test_clean_acc", "test clean", "#1f77b4", "--"),
    ("train_robust_acc", "train PGD", "#d62728", "-"),
    ("test_robust_acc", "test PGD", "#d62728", "--"),
)


def accuracy_curves(
    panels: Mapping[str, Mapping[str, np.ndarray]],
    title: str,
    ncols: int | None = None,
    marks: Mapping[str, Sequence[int]] | None = None,
) -> plt.Figure:
    """Train/test clean and PGD accuracy per epoch, one panel per run.

    Args:
        panels: panel title -> metrics dict with the keys of `ACCURACY_LINES`.
        title: figure title.
        ncols: panels per row (default: all in one row).
        marks: panel title -> epochs to mark with a vertical line (linearisation).
    """
    n = len(panels)
    ncols = ncols or n
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(3.6 * ncols, 3.0 * nrows), squeeze=False
    )
    for ax, (name, metrics) in zip(axes.flat, panels.items(), strict=False):
        for key, label, color, style in ACCURACY_LINES:
            y = np.asarray(metrics[key])
            ax.plot(np.arange(len(y)), y, ls=style, color=color, lw=1.6, label=label)
        for epoch in (marks or {}).get(name, []):
            ax.axvline(epoch, color="grey", lw=1, ls=":")
        ax.set_ylim(0, 1)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="upper left")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# --- rule tasks: read the rule's inputs, draw, save ------------------------------


@dataclasses.dataclass(frozen=True)
class SourceSettings:
    """Params of rules plot_kernel_images and plot_linearized_training.

    Attributes:
        source: the data source of the job's dataset (its label in the titles,
            `dataset_label`).
    """

    source: str


@dataclasses.dataclass(frozen=True)
class DistanceSettings:
    """Params of rule plot_kernel_distance.

    Attributes:
        source: as `SourceSettings`.
        regimes: dynamics.regimes, in config order (the order of the measure files).
    """

    source: str
    regimes: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class PolarSettings:
    """Params of rule plot_polar_dynamics.

    Attributes:
        source: as `SourceSettings`.
        polar_top_k: k of the top-k eigenspace (and of the bottom space, all but k).
    """

    source: str
    polar_top_k: int


@dataclasses.dataclass(frozen=True)
class MassSettings:
    """Params of rule plot_top_mass.

    Attributes:
        sources: dataset -> its data source, for every dynamics dataset (labels).
        mass_top_k: the k of the top-k norm concentrations measured; the largest
            is main Fig. 5.
    """

    sources: dict[str, str]
    mass_top_k: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class TrainingCurvesSettings:
    """Params of rule plot_training_curves.

    Attributes:
        sources: as `MassSettings`.
        regimes: dynamics.regimes (the panels per row: one row per dataset).
    """

    sources: dict[str, str]
    regimes: tuple[str, ...]


#: Model of the dataset shown in main Fig. 5 (CIFAR-10 in the paper); without a
#: run of that model, the first dataset measured.
MAIN_MASS_MODEL = "cnn_mega"


def _run_label(attrs: Mapping[str, Any], spec_key: str) -> str:
    """Regime label of a run or of its measures ('PGD-20' with the attack's steps)."""
    attack = attrs[spec_key]["train_attack"]
    return regime_label(attrs["regime"], attack and attack["steps"])


def plot_kernel_distance(
    inputs: dict[str, Any],
    outputs: dict[str, str],
    settings: DistanceSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule plot_kernel_distance: epoch x epoch eNTK distance heatmaps per regime."""
    panels = {}
    for regime, path in zip(settings.regimes, inputs["measures"], strict=True):
        steps = h5io.read_attrs(path)["run_spec"]["train_attack"]
        label = regime_label(regime, steps and steps["steps"])
        panels[f"{label} training"] = h5io.read(path, ["distance"])["distance"]
    title = (
        f"{dataset_label(ids['dataset'], settings.source)}: eNTK distance "
        "1 - sim(K_s, K_t) between epochs"
    )
    save_figure(distance_heatmaps(panels, title), outputs["png"], log)


def _mass_series(
    paths: Sequence[str], ks: Sequence[int]
) -> tuple[dict, dict[str, str], dict[str, str]]:
    """Top-k masses of every measure file: ({(dataset, k): {regime label: (S, T)
    masses of S seeds}}, {dataset: model}, {regime label: colour})."""
    mass, model, colors = {}, {}, {}
    for path in paths:
        a = h5io.read_attrs(path)
        label = _run_label(a, "run_spec")
        model[a["dataset"]] = a["run_spec"]["model"]
        colors[label] = REGIME_COLORS[a["regime"]]
        for k in ks:
            series = h5io.read(path, [f"mass_top{k}"])[f"mass_top{k}"]
            mass.setdefault((a["dataset"], k), {}).setdefault(label, []).append(series)
    mass = {key: {lb: np.stack(s) for lb, s in m.items()} for key, m in mass.items()}
    return mass, model, colors


def _mass_ylabel(k: int) -> str:
    return rf"$\sum_{{i\leq {k}}}\lambda_i^2 / \sum_i \lambda_i^2$"


def plot_top_mass(
    inputs: dict[str, Any],
    outputs: dict[str, str],
    settings: MassSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule plot_top_mass: top-k eNTK norm concentration (main Fig. 5, supp. Fig. 7),
    per regime: seed mean, each seed and the min-max band over seeds."""
    mass, model, colors = _mass_series(inputs["measures"], settings.mass_top_k)
    # main Fig. 5: the largest k on the dataset of MAIN_MASS_MODEL
    k_main = max(settings.mass_top_k)
    main_ds = next(
        (d for d, m in model.items() if m == MAIN_MASS_MODEL), next(iter(model))
    )
    name = f"{dataset_label(main_ds, settings.sources[main_ds])}: top-{k_main}"
    fig = mass_curves(
        {name: mass[(main_ds, k_main)]},
        {name: _mass_ylabel(k_main)},
        "eNTK norm concentration (main Fig. 5)",
        colors,
    )
    save_figure(fig, outputs["main"], log)
    # supp. Fig. 7: every other (dataset, k)
    panels, ylabels = {}, {}
    for (ds, k), lines in mass.items():
        if (ds, k) != (main_ds, k_main) or len(mass) == 1:
            title = f"{dataset_label(ds, settings.sources[ds])}: top-{k}"
            panels[title], ylabels[title] = lines, _mass_ylabel(k)
    fig = mass_curves(panels, ylabels, "Concentration of norm (supp. Fig. 7)", colors)
    save_figure(fig, outputs["supp"], log)


def plot_polar_dynamics(
    inputs: dict[str, Any],
    outputs: dict[str, str],
    settings: PolarSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule plot_polar_dynamics: polar eNTK dynamics in the full, top-k and bottom
    space, one figure each."""
    name = dataset_label(ids["dataset"], settings.source)
    k = settings.polar_top_k
    titles = {
        "full": f"{name}: polar dynamics of the eNTK (full space)",
        "top": f"{name}: polar dynamics of the top-{k} eigenspace",
        "bottom": f"{name}: polar dynamics of the bottom space (all but top {k})",
    }
    for space in ("full", "top", "bottom"):
        curves = {}
        for path in inputs["measures"]:
            label = _run_label(h5io.read_attrs(path), "run_spec")
            m = h5io.read(path, [f"angle_{space}", f"radius_{space}"])
            curves[label] = (m[f"angle_{space}"], m[f"radius_{space}"])
        save_figure(polar_panels(curves, titles[space]), outputs[space], log)


def plot_kernel_images(
    inputs: dict[str, str],
    outputs: dict[str, str],
    settings: SourceSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule plot_kernel_images: eNTK at init / after standard / after PGD training."""

    def kernel(path: str, epoch: int) -> np.ndarray:
        with h5io.open_read(path) as f:
            return f["kernels"][epoch]

    std, pgd = h5io.read_attrs(inputs["standard"]), h5io.read_attrs(inputs["pgd"])
    e_std, e_pgd = std["spec"]["epochs"], pgd["spec"]["epochs"]
    steps = pgd["spec"]["train_attack"]["steps"]
    panels = {
        "initialisation": kernel(inputs["standard"], 0),
        f"after standard training ({e_std} ep.)": kernel(inputs["standard"], -1),
        f"after PGD-{steps} training ({e_pgd} ep.)": kernel(inputs["pgd"], -1),
    }
    title = (
        f"{dataset_label(ids['dataset'], settings.source)}: eNTK on the first "
        f"{std['spec']['kernel_batch']} training images "
        f"({std['kernel_inputs']} inputs), shared colour scale"
    )
    fig = kernel_images(panels, title, std["spec"]["num_classes"])
    save_figure(fig, outputs["png"], log)


def _accuracy_metrics(path: str) -> dict[str, np.ndarray]:
    """The per-epoch accuracies of a run file (the keys of `ACCURACY_LINES`)."""
    return h5io.read(path, [m for m in METRICS if m.endswith("_acc")])


def plot_training_curves(
    inputs: dict[str, Any],
    outputs: dict[str, str],
    settings: TrainingCurvesSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule plot_training_curves: clean / PGD train and test accuracy of every run
    (rows: datasets, columns: regimes)."""
    panels, eval_steps = {}, {}
    for path in inputs["runs"]:
        a = h5io.read_attrs(path)
        name = dataset_label(a["dataset"], settings.sources[a["dataset"]])
        panels[f"{name}: {_run_label(a, 'spec')} training"] = _accuracy_metrics(path)
        eval_steps[name] = a["spec"]["eval_attack"]["steps"]
    robust = ", ".join(f"PGD-{k} on {ds}" for ds, k in eval_steps.items())
    fig = accuracy_curves(
        panels, f"Training curves (robust accuracy: {robust})", len(settings.regimes)
    )
    save_figure(fig, outputs["png"], log)


def plot_linearized_training(
    inputs: dict[str, Any],
    outputs: dict[str, str],
    settings: SourceSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule plot_linearized_training: PGD training linearised after each
    linearisation epoch, next to the non-linearised PGD run."""
    panels, marks = {}, {}
    for path in inputs["runs"]:
        lin = h5io.read_attrs(path)["lin_epoch"]
        title = f"linearised after {lin} epochs"
        panels[title], marks[title] = _accuracy_metrics(path), [lin]
    ref = h5io.read_attrs(inputs["reference"])
    steps = ref["spec"]["train_attack"]["steps"]
    panels["not linearised"] = _accuracy_metrics(inputs["reference"])
    name = dataset_label(ids["dataset"], settings.source)
    title = (
        f"{name}: linearised PGD-{steps} training "
        f"(robust = PGD-{ref['spec']['eval_attack']['steps']} accuracy)"
    )
    save_figure(accuracy_curves(panels, title, marks=marks), outputs["png"], log)
