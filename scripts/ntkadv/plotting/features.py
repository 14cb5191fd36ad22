"""Figures of the NTK-eigenfeature stage (paper Sec. 4, supp. App. D).

* `ru_grid`: Robustness-Usefulness scatters, one panel per architecture (supp. Figs
  2-3; the FC2/CONV2 pair is main Fig. 2), with the permuted-label null cloud.
* `gradient_grid`: min-max normalised loss-gradient images of single features for
  one test image (main Fig. 3 [INFER], the notebook's visualisation).
* `consistency_heatmaps`: cross-architecture Spearman correlations of robustness
  and usefulness (with their permuted-label null) and the top eigenspace overlap
  (finding 3), annotated seaborn heatmaps.
* `topr_curves`: accuracy of top-r robust kernels against r (supp. Figs 4-5).

Functions take plain arrays and return a matplotlib Figure; callers save it. No file
I/O and no math beyond display normalisation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from ntkadv.kernels.families import FAMILIES, family  # noqa: E402
from ntkadv.plotting import wrap_title  # noqa: E402


def arch_label(arch: str) -> str:
    """Display name of an architecture key: ``<family><depth>`` keys take the
    registry's family label (fc3 -> FC3, conv2 -> CONV2, myrtle1 -> Myrtle1,
    twolayer -> Two-layer (Eq. 29)); any other key is upper-cased."""
    m = re.fullmatch(r"([a-z]+)(\d*)", arch)
    if m and m.group(1) in FAMILIES:
        return family(m.group(1)).label + m.group(2)
    return arch.upper()


def ru_grid(
    panels: Mapping[str, Mapping],
    nonrobust_max: float,
    title: str,
    ncols: int = 4,
) -> plt.Figure:
    """R-U scatter per kernel: usefulness (x) vs robustness (y), axes [0, 1].

    Args:
        panels: key -> {"index" (K,), "usefulness" (K,), "robustness" (K,),
            "null_usefulness" (P·K,), "null_robustness" (P·K,), "majority": float,
            "useful_min": float, "title": str}. True-label features are coloured by
            eigen-index (0 = largest λ); the same features under P permuted
            training labels (the null control) are the light grey cloud.
            `majority` (the majority-class rate of the evaluation set, the accuracy
            and robustness of a constant predictor) is drawn as dashed lines;
            `useful_min` (significantly above it) bounds the useful boxes.
        nonrobust_max: top of the "useful, non-robust" box.
        title: figure title.
        ncols: panels per row.
    """
    n = len(panels)
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    width = max(3.1 * ncols + 1.2, 5.6)  # one panel: room for title and colour bar
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(width, 3.3 * nrows + 0.5), squeeze=False,
        layout="constrained",
    )  # fmt: skip
    vmax = max(int(np.max(p["index"])) for p in panels.values())
    sc = None
    for ax, p in zip(axes.flat, panels.values(), strict=False):
        maj, lo = p["majority"], min(p["useful_min"], 1.0)
        ax.add_patch(
            Rectangle(
                (lo, maj),
                1 - lo,
                1 - maj,
                color="tab:green",
                alpha=0.08,
                lw=0,
                label="useful, robust",
            )
        )
        ax.add_patch(
            Rectangle(
                (lo, 0),
                1 - lo,
                nonrobust_max,
                color="tab:red",
                alpha=0.15,
                lw=0,
                label="useful, non-robust",
            )
        )
        ax.scatter(
            p["null_usefulness"],
            p["null_robustness"],
            s=8,
            color="0.6",
            alpha=0.4,
            lw=0,
            label="permuted training labels",
            zorder=1,
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
            zorder=2,
        )
        ax.axvline(maj, color="0.3", ls="--", lw=0.8, label="majority rate")
        ax.axhline(maj, color="0.3", ls="--", lw=0.8)
        ax.axvline(lo, color="0.5", ls=":", lw=0.8, label="maj + 2 SE")
        ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), aspect="equal")
        ax.set_title(p["title"], fontsize=9)
        ax.set_xlabel("usefulness (clean accuracy)", fontsize=8)
        ax.set_ylabel("robustness (clean and FGSM correct)", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(loc="upper left", fontsize=6, frameon=False)
    fig.suptitle(wrap_title(title, width, 11), fontsize=11)
    bar = fig.colorbar(sc, ax=list(axes.flat[:n]), shrink=0.8, aspect=30)
    bar.set_label("eigen-index i (0 = largest eigenvalue)", fontsize=8)
    bar.ax.tick_params(labelsize=7)
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
    matrices: Mapping[str, tuple[np.ndarray, np.ndarray | None]],
    title: str,
) -> plt.Figure:
    """Annotated seaborn heatmaps of cross-architecture consistency (finding 3).

    Args:
        archs: (A,) architecture keys.
        matrices: panel title -> ((A, A) values, (A, A) null values or None); a
            null is printed in brackets under each value.
        title: figure title.
    """
    import seaborn as sns

    labels = [arch_label(a) for a in archs]
    k = len(matrices)
    size = 0.6 * len(archs) + 1.8
    fig, axes = plt.subplots(1, k, figsize=(size * k + 0.6, size + 0.4), squeeze=False)
    for ax, (name, (mat, null)) in zip(axes[0], matrices.items(), strict=True):
        text = np.vectorize(lambda v: "nan" if np.isnan(v) else f"{v:.2f}")(mat)
        if null is not None:
            text = np.char.add(
                np.char.add(text, "\n("),
                np.char.add(
                    np.vectorize(lambda v: "nan" if np.isnan(v) else f"{v:.2f}")(null),
                    ")",
                ),
            )
        sns.heatmap(
            mat,
            vmin=-1 if np.nanmin(mat) < 0 else 0,
            vmax=1,
            cmap="viridis",
            annot=text,
            fmt="",
            annot_kws={"fontsize": 6 if len(archs) > 5 else 7.5},
            xticklabels=labels,
            yticklabels=labels,
            square=True,
            cbar_kws={"shrink": 0.7},
            ax=ax,
        )
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


TOPR_SERIES = (
    ("clean", "clean", "tab:blue", "-"),
    ("fgsm_transfer", "FGSM from full kernel", "tab:red", "-"),
    ("pgd_transfer", "PGD10 from full kernel", "tab:purple", (0, (5, 2))),
    ("fgsm_own", "FGSM on f'_r", "tab:orange", (0, (2, 1.5))),
    ("pgd_own", "PGD10 on f'_r", "tab:green", (0, (1, 1.5))),
)
TOPR_KEYS = tuple(key for key, *_ in TOPR_SERIES)
#: marker, size, hollow per series: the attacks often coincide, so their markers
#: nest (square > diamond > circle > triangle, largest drawn first).
TOPR_MARKERS = {
    "clean": ("o", 4.0, False),
    "fgsm_transfer": ("s", 10.0, True),
    "pgd_transfer": ("D", 7.5, True),
    "fgsm_own": ("o", 5.5, True),
    "pgd_own": ("^", 4.0, False),
}


def topr_curves(
    r: np.ndarray,
    curves: Mapping[str, np.ndarray],
    full: Mapping[str, float],
    majority: float,
    title: str,
    null_own: np.ndarray | None = None,
) -> plt.Figure:
    """Accuracy of the top-r robust kernels against r (log axis), supp. Figs 4-5.

    Args:
        r: (R,) numbers of kept features.
        curves: series name -> (R,) accuracies (names of `TOPR_SERIES`; robust
            ones count points correct clean and attacked).
        full: full-kernel accuracies {"full_clean", "full_fgsm", "full_pgd"}.
        majority: majority-class rate of the evaluation set (dotted line).
        title: figure title.
        null_own: (P, R) own-FGSM robust accuracy with permuted training labels
            (each re-ranked), drawn in light grey.
    """
    fig, ax = plt.subplots(figsize=(7.6, 3.9))
    if null_own is not None:
        for j, row in enumerate(np.atleast_2d(null_own)):
            ax.plot(
                r,
                row,
                color="0.7",
                lw=0.9,
                label="FGSM on f'_r, permuted labels" if j == 0 else None,
            )
    for z, (key, label, color, ls) in enumerate(TOPR_SERIES):
        marker, ms, hollow = TOPR_MARKERS[key]
        ax.plot(
            r,
            curves[key],
            ls=ls,
            color=color,
            marker=marker,
            ms=ms,
            mew=1.2,
            mfc="none" if hollow else color,
            label=label,
            zorder=3 + z,
        )
    ax.axhline(majority, color="0.4", ls=":", lw=0.9, label="majority rate")
    ax.set(xscale="log", ylim=(-0.02, 1.02), xlabel="r (most robust features kept)")
    ax.set_ylabel("accuracy (robust: clean and attacked correct)", fontsize=8)
    ax.set_title(
        f"{title}\nfull kernel: clean {full['full_clean']:.2f}, FGSM "
        f"{full['full_fgsm']:.2f}, PGD10 {full['full_pgd']:.2f}",
        fontsize=9,
    )
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return fig
