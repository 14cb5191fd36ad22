"""Figures of the transfer experiment (Tsilivis & Kempe 2022, §3.2, supp. C, Fig. 1).

* `plot_transfer_curves`: supp. Fig. 1a (MNIST) and its binary-CIFAR counterpart
  (main Fig. 1). Top: cosine similarity of the NTK and net loss gradients (supp.
  Eq. 30) against the training epoch, one colour per width, one thin line per seed
  and the seed mean in bold. Bottom: robust accuracy of the net (f − f_0) against
  its own FGSM examples (solid) and the NTK's (dashed); the NTK's robust accuracy
  against its own examples in grey for reference.
* `plot_gradient_grid`: supp. Fig. 1b, loss-gradient images of one test image. The
  caption of the paper names the columns (width 10³ left, 10⁴ middle, NTK right)
  and then says "columns show gradients for different epochs (10², 10³, 10⁴)"; we
  read the epochs as the ROWS (the only layout consistent with the first sentence).

Pure functions of arrays/tables returning a matplotlib Figure; no file I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ntkadv.data import CIFAR10_NAMES

#: Width colours: the paper's blue / red.
WIDTH_COLOURS = ("tab:blue", "tab:red", "tab:green", "tab:purple")


def class_name(source: str, label: int) -> str:
    """Human-readable name of a raw class label ("digit 3", "airplane")."""
    if source == "cifar10":
        return CIFAR10_NAMES[int(label)]
    return f"digit {int(label)}"


def _width_label(width: int) -> str:
    exponent = np.log10(width)
    if np.isclose(exponent, round(exponent)):
        return f"width $10^{{{int(round(exponent))}}}$"
    return f"width {width}"


def plot_transfer_curves(table, dataset: str, title: str | None = None):
    """Cosine similarity (top) and robust accuracies (bottom) against the epoch.

    Args:
        table: per-epoch table (`ntkadv.twolayer.epoch_table`), rows of one or more
            datasets; columns dataset, width, seed, epoch, cosine, acc_own, acc_ntk,
            ntk_acc_own.
        dataset: the dataset to plot.
        title: figure title (default: the dataset).

    Returns:
        matplotlib Figure with two stacked axes sharing the log-scaled epoch axis.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = table[table["dataset"] == dataset]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.0, 6.4), sharex=True)
    for i, (width, by_width) in enumerate(data.groupby("width", sort=True)):
        colour = WIDTH_COLOURS[i % len(WIDTH_COLOURS)]
        seeds = sorted(by_width["seed"].unique())
        for seed in seeds:
            run = by_width[by_width["seed"] == seed].sort_values("epoch")
            top.plot(run["epoch"], run["cosine"], color=colour, lw=0.8, alpha=0.45)
            bottom.plot(run["epoch"], run["acc_own"], color=colour, lw=0.8, alpha=0.45)
            bottom.plot(
                run["epoch"], run["acc_ntk"], color=colour, lw=0.8, ls="--", alpha=0.45
            )
        mean = by_width.groupby("epoch")[["cosine", "acc_own", "acc_ntk"]].mean()
        plural = "s" if len(seeds) > 1 else ""
        label = f"{_width_label(int(width))} ({len(seeds)} seed{plural})"
        top.plot(mean.index, mean["cosine"], color=colour, lw=2.0, label=label)
        bottom.plot(
            mean.index,
            mean["acc_own"],
            color=colour,
            lw=2.0,
            label=f"{_width_label(int(width))}, own FGSM",
        )
        bottom.plot(
            mean.index,
            mean["acc_ntk"],
            color=colour,
            lw=2.0,
            ls="--",
            label=f"{_width_label(int(width))}, NTK FGSM",
        )
    ntk = data.groupby("epoch")["ntk_acc_own"].first()
    bottom.plot(
        ntk.index, ntk.values, color="0.5", lw=1.2, ls=":", label="NTK, own FGSM"
    )
    top.set_ylabel("cosine similarity of\nloss gradients (Eq. 30)")
    top.set_ylim(min(0.0, float(data["cosine"].min()) - 0.05), 1.0)
    top.axhline(1.0, color="0.8", lw=0.8)
    top.legend(loc="lower right", fontsize=8)
    bottom.set_ylabel("robust accuracy of $f - f_0$")
    bottom.set_xlabel("epoch (full-batch GD; NTK time $t$ = epoch / $n$)")
    bottom.set_ylim(-0.02, 1.02)
    bottom.set_xscale("log")
    bottom.legend(loc="upper right", fontsize=7, ncol=2)
    fig.suptitle(title or dataset)
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
