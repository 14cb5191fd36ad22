"""Figures of the NTK-eigenfeature stage (paper Sec. 4, supp. App. D).

* `ru_grid`: Robustness-Usefulness scatters, one panel per architecture (supp. Figs
  2-3; the FC2/CONV2 pair is main Fig. 2).
* `gradient_grid`: min-max normalised loss-gradient images of single features for
  one test image (main Fig. 3 [INFER], the notebook's visualisation).
* `consistency_heatmaps`: cross-architecture Spearman correlation of robustness and
  top eigenspace overlap (finding 3).
* `topr_curves`: accuracy of top-r robust kernels against r (supp. Figs 4-5).

Functions take plain arrays and return a matplotlib Figure; callers save it. No file
I/O and no math beyond display normalisation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

ARCH_LABELS = {
    "fc1": "FC1",
    "fc2": "FC2",
    "fc3": "FC3",
    "fc4": "FC4",
    "fc5": "FC5",
    "conv1": "CONV1",
    "conv2": "CONV2",
    "twolayer": "Two-layer (Eq. 29)",
}


def arch_label(arch: str) -> str:
    """Display name of an architecture key."""
    return ARCH_LABELS.get(arch, arch.upper())


def ru_grid(
    panels: Mapping[str, Mapping],
    nonrobust_max: float,
    title: str,
    ncols: int = 4,
) -> plt.Figure:
    """R-U scatter per kernel: usefulness (x) vs robustness (y), axes [0, 1].

    Args:
        panels: key -> {"index" (K,), "usefulness" (K,), "robustness" (K,),
            "chance": float, "title": str}. Points are coloured by eigen-index
            (0 = largest λ). `chance` is the useful threshold (0.1 MNIST, 0.5 binary
            CIFAR), drawn as a dashed vertical and a dotted horizontal line.
        nonrobust_max: top of the "useful, non-robust" box.
        title: figure title.
        ncols: panels per row.
    """
    n = len(panels)
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(3.1 * ncols + 0.8, 3.1 * nrows), squeeze=False
    )
    vmax = max(int(np.max(p["index"])) for p in panels.values())
    sc = None
    for ax, p in zip(axes.flat, panels.values(), strict=False):
        chance = p["chance"]
        ax.add_patch(
            Rectangle(
                (chance, chance),
                1 - chance,
                1 - chance,
                color="tab:green",
                alpha=0.08,
                lw=0,
                label="useful, robust",
            )
        )
        ax.add_patch(
            Rectangle(
                (chance, 0),
                1 - chance,
                nonrobust_max,
                color="tab:red",
                alpha=0.15,
                lw=0,
                label="useful, non-robust",
            )
        )
        order = np.argsort(p["index"])[::-1]  # top features drawn last (on top)
        sc = ax.scatter(
            np.asarray(p["usefulness"])[order],
            np.asarray(p["robustness"])[order],
            c=np.asarray(p["index"])[order],
            cmap="viridis_r",
            vmin=0,
            vmax=vmax,
            s=16,
            edgecolors="k",
            linewidths=0.2,
        )
        ax.axvline(chance, color="0.4", ls="--", lw=0.8)
        ax.axhline(chance, color="0.4", ls=":", lw=0.8)
        ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), aspect="equal")
        ax.set_title(p["title"], fontsize=9)
        ax.set_xlabel("usefulness (clean accuracy)", fontsize=8)
        ax.set_ylabel("robustness (FGSM accuracy)", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(loc="upper left", fontsize=6, frameon=False)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0, 0.93, 0.97))
    cax = fig.add_axes((0.94, 0.15, 0.012, 0.7))
    fig.colorbar(sc, cax=cax, label="eigen-index i (0 = largest eigenvalue)")
    return fig


def _as_image(flat: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    img = np.asarray(flat).reshape(shape)
    return img[..., 0] if img.shape[-1] == 1 else img


def gradient_grid(
    images: np.ndarray,
    indices: Sequence[int],
    test_image: np.ndarray,
    shape: Sequence[int],
    title: str,
    labels: Sequence[str] | None = None,
    ncols: int = 7,
) -> plt.Figure:
    """The test image followed by min-max normalised gradient images ∇ₓL(f⁽ⁱ⁾).

    Args:
        images: (K, d) gradients already normalised to [0, 1].
        indices: (K,) eigen-indices (panel titles).
        test_image: (d,) the clean test image in [0, 1].
        shape: (H, W, C) image shape.
        title: figure title.
        labels: optional extra line per panel (e.g. the notebook index it stands for).
        ncols: panels per row.
    """
    k = len(indices) + 1
    ncols = min(ncols, k)
    nrows = int(np.ceil(k / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.7 * ncols, 2.15 * nrows + 0.3))
    axes = np.atleast_1d(axes).reshape(-1)
    gray = shape[-1] == 1
    kw = {"cmap": "gray", "vmin": 0, "vmax": 1} if gray else {}
    axes[0].imshow(_as_image(test_image, shape), **kw)
    axes[0].set_title("test image", fontsize=8)
    for j, i in enumerate(indices):
        ax = axes[j + 1]
        ax.imshow(_as_image(images[j], shape), **kw)
        extra = f"\n{labels[j]}" if labels is not None else ""
        ax.set_title(f"feature {i}{extra}", fontsize=8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[k:]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def consistency_heatmaps(
    archs: Sequence[str],
    spearman: np.ndarray,
    overlap: np.ndarray,
    top: int,
    title: str,
) -> plt.Figure:
    """Two annotated heatmaps: Spearman(robustness) and top-`top` subspace overlap.

    Args:
        archs: (A,) architecture keys.
        spearman, overlap: (A, A) matrices.
    """
    labels = [arch_label(a) for a in archs]
    fig, axes = plt.subplots(1, 2, figsize=(4.2 * 2 + 1, 4.2))
    for ax, mat, name, lo in (
        (axes[0], spearman, "Spearman correlation of robustness", -1.0),
        (axes[1], overlap, f"top-{top} eigenspace overlap (mean cos²)", 0.0),
    ):
        im = ax.imshow(mat, vmin=lo, vmax=1.0, cmap="viridis")
        for (r, c), v in np.ndenumerate(mat):
            txt = "nan" if np.isnan(v) else f"{v:.2f}"
            ax.text(
                c,
                r,
                txt,
                ha="center",
                va="center",
                fontsize=7,
                color="w" if (np.isnan(v) or v < (lo + 1) / 2) else "k",
            )
        ax.set_xticks(range(len(archs)), labels, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(archs)), labels, fontsize=8)
        ax.set_title(name, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


TOPR_SERIES = (
    ("clean", "clean", "tab:blue", "-"),
    ("fgsm_transfer", "FGSM from full kernel", "tab:red", "-"),
    ("pgd_transfer", "PGD10 from full kernel", "tab:purple", "--"),
    ("fgsm_own", "FGSM on f'_r", "tab:orange", "-"),
    ("pgd_own", "PGD10 on f'_r", "tab:green", "--"),
)


def topr_curves(
    r: np.ndarray,
    curves: Mapping[str, np.ndarray],
    full: Mapping[str, float],
    chance: float,
    title: str,
) -> plt.Figure:
    """Accuracy of the top-r robust kernels against r (log axis), supp. Figs 4-5.

    Args:
        r: (R,) numbers of kept features.
        curves: series name -> (R,) accuracies (names of `TOPR_SERIES`).
        full: full-kernel accuracies {"full_clean", "full_fgsm", "full_pgd"}.
        chance: chance accuracy (dotted line).
        title: figure title.
    """
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    for key, label, color, ls in TOPR_SERIES:
        ax.plot(r, curves[key], ls, color=color, marker="o", ms=3, label=label)
    ax.axhline(chance, color="0.5", ls=":", lw=0.8, label="chance")
    ax.set(xscale="log", ylim=(-0.02, 1.02), xlabel="r (most robust features kept)")
    ax.set_ylabel("accuracy")
    ax.set_title(
        f"{title}\nfull kernel: clean {full['full_clean']:.2f}, FGSM "
        f"{full['full_fgsm']:.2f}, PGD10 {full['full_pgd']:.2f}",
        fontsize=9,
    )
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig
