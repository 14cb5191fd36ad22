"""Figures of the transfer experiment (Tsilivis & Kempe 2022, §3.2, supp. C, Fig. 1).

* `transfer_curves_figure`: supp. Fig. 1a (MNIST) and its binary-CIFAR counterpart
  (main Fig. 1). Top: cosine similarity of the NTK and net loss gradients (supp.
  Eq. 30) against the training epoch, one colour per width, seed mean with a CI
  across seeds, and the mismatched-pair controls. Bottom: robust accuracy of the net
  (f − f_0) against its own FGSM examples (solid), the NTK's (dashed) and random
  signs (dotted); the NTK's robust accuracy against its own examples in grey.
* `plot_gradient_grid`: supp. Fig. 1b, loss-gradient images of one test image. The
  caption of the paper names the columns (width 10³ left, 10⁴ middle, NTK right)
  and then says "columns show gradients for different epochs (10², 10³, 10⁴)"; we
  read the epochs as the ROWS (the only layout consistent with the first sentence).

The drawing functions take arrays / tables and return a matplotlib Figure (no file
I/O); the rule tasks `plot_transfer_curves` and `plot_transfer_gradients` at the end
read the rule's inputs, draw and save.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ntkadv.plotting import save_figure

#: Cosine curves: the paper's statistic and its two mismatched-pair controls.
PAIRS = {
    "cosine": "same point",
    "cosine_same_class": "other point, same class",
    "cosine_mismatched": "other point (i+1)",
}
#: Width colours: the paper's blue / red.
WIDTH_COLOURS = ("tab:blue", "tab:red", "tab:green", "tab:purple")


def class_name(source: str, label: int) -> str:
    """Human-readable name of a raw class label ("digit 3", "airplane"): the
    data-source registry's (`ntkadv.data.sources.class_names`), a bare number
    read as a digit."""
    from ntkadv.data.sources import class_names

    (name,) = class_names(source, [label])
    return f"digit {name}" if name.isdigit() else name


def _width_label(width: int) -> str:
    exponent = np.log10(width)
    if np.isclose(exponent, round(exponent)):
        return f"width $10^{{{int(round(exponent))}}}$"
    return f"width {width}"


def _width_order(data) -> tuple[list[str], dict[str, str]]:
    """Relabel `data`'s widths for the legend (in place): (labels in width order,
    label -> colour)."""
    widths = sorted(int(w) for w in data["width"].unique())
    data["width"] = data["width"].astype(int).map(_width_label)
    order = [_width_label(w) for w in widths]
    return order, dict(zip(order, WIDTH_COLOURS, strict=False))


def _cosine_panel(ax, data, order: list[str], palette: dict[str, str]) -> None:
    """Top panel: cosine of the loss gradients, one style per pair (`PAIRS`)."""
    import seaborn as sns

    cosines = data.melt(
        id_vars=["width", "seed", "epoch"],
        value_vars=["cosine", "cosine_same_class", "cosine_mismatched"],
        var_name="pair",
        value_name="value",
    ).replace({"pair": PAIRS})
    sns.lineplot(
        cosines,
        x="epoch",
        y="value",
        hue="width",
        hue_order=order,
        palette=palette,
        style="pair",
        style_order=list(PAIRS.values()),
        dashes=dict(zip(PAIRS.values(), ("", (4, 2), (1, 2)), strict=True)),
        errorbar=("ci", 95),
        ax=ax,
    )


def _accuracy_panel(ax, data, order: list[str], palette: dict[str, str]) -> None:
    """Bottom panel: robust accuracy of the nets per perturbation, and the NTK's
    against its own FGSM in grey."""
    import seaborn as sns

    accs = data.melt(
        id_vars=["width", "seed", "epoch"],
        value_vars=["acc_own", "acc_ntk", "acc_random"],
        var_name="perturbation",
        value_name="value",
    ).replace(
        {
            "perturbation": {
                "acc_own": "own FGSM",
                "acc_ntk": "NTK FGSM",
                "acc_random": "random signs",
            }
        }
    )
    sns.lineplot(
        accs,
        x="epoch",
        y="value",
        hue="width",
        hue_order=order,
        palette=palette,
        style="perturbation",
        style_order=["own FGSM", "NTK FGSM", "random signs"],
        dashes={"own FGSM": "", "NTK FGSM": (4, 2), "random signs": (1, 2)},
        errorbar=("ci", 95),
        ax=ax,
    )
    ntk = data.groupby("epoch")["ntk_acc_own"].first()
    ax.plot(ntk.index, ntk.values, color="0.55", lw=1.2, label="NTK $f_t$, own FGSM")


def _label_axes(top, bottom, data, align_epoch: int | None) -> None:
    """Log epoch axes, the alignment epoch, limits, labels and legends."""
    for ax in (top, bottom):
        if align_epoch is not None:
            ax.axvline(align_epoch, color="0.7", lw=0.8, ls="-.", zorder=0)
        ax.set_xscale("log")
    top.axhline(0.0, color="0.85", lw=0.8, zorder=0)
    top.axhline(1.0, color="0.85", lw=0.8, zorder=0)
    low = float(data[list(PAIRS)].min().min())
    top.set_ylim(min(0.0, low - 0.05), 1.02)
    top.set_ylabel("cosine of loss gradients (Eq. 30)")
    top.legend(loc="lower right", fontsize=7, ncol=2)
    bottom.set_ylim(-0.02, 1.02)
    bottom.set_ylabel("robust accuracy of $f - f_0$\n(correct clean and perturbed)")
    bottom.set_xlabel("epoch (full-batch GD; NTK time $t$ = epoch / $n$)")
    bottom.legend(loc="best", fontsize=7, ncol=2)


def _seeds_caption(n_seeds: int, align_epoch: int | None) -> str:
    plural = "s" if n_seeds > 1 else ""
    band = "95% CI across seeds" if n_seeds > 1 else "one seed, no band"
    suffix = f"{n_seeds} seed{plural} ({band})"
    if align_epoch is not None:
        suffix += f"; dash-dot: alignment epoch {align_epoch}"
    return suffix


def transfer_curves_figure(
    table, dataset: str, title: str | None = None, align_epoch: int | None = None
):
    """Cosine similarity (top) and robust accuracies (bottom) against the epoch.

    Seaborn line plots of the seed mean with a 95% bootstrap CI across seeds (a band
    only with >= 2 seeds), one colour per width. Top: cosine of the NTK and net loss
    gradients of the same test point (solid) and of mismatched pairs, the next
    test point of the same class (dashed) and point i + 1 (dotted): the controls of
    claim 5a. Bottom: robust accuracy of the net
    (f − f_0; correct clean AND perturbed) against its own FGSM examples (solid),
    the NTK's (dashed) and a random-sign perturbation of the same ε (dotted: the
    control of claim 5b); the NTK predictor against its own FGSM in grey.

    Args:
        table: per-epoch table (`ntkadv.transfer.tables.epoch_table`), rows of one
            or more datasets.
        dataset: the dataset to plot.
        title: figure title (default: the dataset).
        align_epoch: transfer.align_epoch, marked by a vertical line (claim 5a).

    Returns:
        matplotlib Figure with two stacked axes sharing the log-scaled epoch axis.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = table[table["dataset"] == dataset].copy()
    order, palette = _width_order(data)
    n_seeds = int(data["seed"].nunique())
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.4, 7.0), sharex=True)
    _cosine_panel(top, data, order, palette)
    _accuracy_panel(bottom, data, order, palette)
    _label_axes(top, bottom, data, align_epoch)
    fig.suptitle(
        f"{title or dataset}\n{_seeds_caption(n_seeds, align_epoch)}", fontsize=10
    )
    fig.tight_layout()
    return fig


def normalise_image(grad: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Min-max normalise a flattened gradient to [0, 1] and reshape to (H, W[, C]).

    Args:
        grad: (d,) gradient.
        shape: image shape (H, W, C); C = 1 is squeezed to a grey image.
    """
    grad = np.asarray(grad, dtype=np.float64)
    low, high = float(grad.min()), float(grad.max())
    image = (grad - low) / (high - low) if high > low else np.zeros_like(grad)
    image = image.reshape(tuple(shape))
    return image[..., 0] if image.shape[-1] == 1 else image


def plot_gradient_grid(
    columns: Mapping[str, np.ndarray],
    epochs: Sequence[int],
    shape: Sequence[int],
    image: np.ndarray | None = None,
    title: str | None = None,
):
    """Grid of loss-gradient images: rows = epochs, columns = models (supp. Fig. 1b).

    Args:
        columns: column label -> (E, d) gradients, one row per epoch (e.g. width
            10³, width 10⁴, NTK), in display order.
        epochs: (E,) the epochs of the rows.
        shape: image shape (H, W, C).
        image: optional (d,) clean input, shown in an extra first column.
        title: figure title.

    Returns:
        matplotlib Figure; each panel min-max normalised on its own.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(columns)
    n_cols = len(labels) + (image is not None)
    n_rows = len(epochs)
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(1.9 * n_cols, 1.9 * n_rows + 0.5), squeeze=False
    )
    offset = 1 if image is not None else 0
    for r, epoch in enumerate(epochs):
        if image is not None:
            ax = axes[r, 0]
            if r == 0:
                ax.imshow(normalise_image(image, shape), cmap="gray")
                ax.set_title("input", fontsize=9)
            ax.axis("off")
        for c, label in enumerate(labels):
            ax = axes[r, c + offset]
            ax.imshow(normalise_image(columns[label][r], shape), cmap="gray")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(label, fontsize=9)
            if c == 0:
                ax.set_ylabel(f"epoch {int(epoch)}", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


# --- rule tasks: read the rule's inputs, draw, save ------------------------------


@dataclasses.dataclass(frozen=True)
class CurvesSettings:
    """Params of rule plot_transfer_curves.

    Attributes:
        title: figure title (the paper figure and the setting).
        align_epoch: transfer.align_epoch, marked by a vertical line (claim 5a).
    """

    title: str
    align_epoch: int


@dataclasses.dataclass(frozen=True)
class GradientsSettings:
    """Params of rule plot_transfer_gradients.

    Attributes:
        image_index: the test image whose loss gradients are shown (its index in
            the test subset).
    """

    image_index: int


def plot_transfer_curves(
    inputs: dict[str, str],
    outputs: dict[str, str],
    settings: CurvesSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule plot_transfer_curves: cosine similarity and robust accuracies vs epoch
    (`transfer_curves_figure`) from results/tables/transfer_epochs.csv."""
    import pandas as pd

    table = pd.read_csv(inputs["epochs"])
    fig = transfer_curves_figure(
        table, ids["dataset"], settings.title, settings.align_epoch
    )
    save_figure(fig, outputs["figure"], log)


def plot_transfer_gradients(
    inputs: dict[str, Any],
    outputs: dict[str, str],
    settings: GradientsSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule plot_transfer_gradients: loss-gradient images of the nets and the NTK
    at one test image (supp. Fig. 1b); rows = epochs."""
    from ntkadv import h5io

    ref = h5io.read(inputs["reference"], ["image", "image_epochs", "grad_image"])
    meta = h5io.read_attrs(inputs["reference"])
    columns = {}
    for path in inputs["runs"]:
        run = h5io.read_attrs(path)
        columns[f"width {run['width']}"] = h5io.read(path, ["grad_image"])["grad_image"]
    columns["NTK"] = ref["grad_image"]
    epochs = np.asarray(ref["image_epochs"])
    log.info("columns %s, epochs %s", list(columns), epochs.tolist())
    name = class_name(meta["source"], meta["image_class"])
    title = f"{meta['dataset']} test image {settings.image_index} ({name})"
    fig = plot_gradient_grid(columns, epochs, meta["image_shape"], ref["image"], title)
    save_figure(fig, outputs["figure"], log)
