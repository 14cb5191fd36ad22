"""Figures of the NTK-eigenfeature stage (paper Sec. 4, supp. App. D).

* `ru_grid`: Robustness-Usefulness scatters, one panel per architecture (supp. Figs
  2-3; the FC2/CONV2 pair is main Fig. 2), with the permuted-label null cloud.
* `gradient_grid`: min-max normalised loss-gradient images of single features for
  one test image (main Fig. 3 [INFER], the notebook's visualisation).
* `consistency_heatmaps`: cross-architecture Spearman correlations of robustness
  and usefulness (with their permuted-label null) and the top eigenspace overlap
  (finding 3), annotated seaborn heatmaps.
* `topr_curves`: accuracy of top-r robust kernels against r (supp. Figs 4-5).

The drawing functions take plain arrays and return a matplotlib Figure (no file I/O
and no math beyond display normalisation); the rule tasks at the end
(`plot_feature_ru`, `plot_feature_gradients`, `plot_feature_consistency`,
`plot_topr_kernels`) read the rule's inputs, draw and save.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from ntkadv import h5io  # noqa: E402
from ntkadv.kernels.families import FAMILIES, family  # noqa: E402
from ntkadv.plotting import save_figure, wrap_title  # noqa: E402


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


# --- rule tasks: read the rule's inputs, draw, save ------------------------------


@dataclasses.dataclass(frozen=True)
class NullSettings:
    """The permuted-training-label null control of the features stage.

    Attributes:
        permutations: training-label permutations rescored.
        seed: the config seed (`ntkadv.claims.nulls.label_permutations`).
    """

    permutations: int
    seed: int


@dataclasses.dataclass(frozen=True)
class RuSettings:
    """Params of rule plot_feature_ru.

    Attributes:
        top_k: first K eigenfeatures shown per kernel.
        nonrobust_max: top of the "useful, non-robust" box (`ru_grid`).
        title: figure title (the selection's paper figure).
        null: the permuted-label null cloud.
    """

    top_k: int
    nonrobust_max: float
    title: str
    null: NullSettings


@dataclasses.dataclass(frozen=True)
class ConsistencySettings:
    """Params of rule plot_feature_consistency.

    Attributes:
        top: size of the top eigenspaces whose overlap is shown.
    """

    top: int


def plot_feature_ru(
    inputs: dict[str, Any],
    outputs: dict[str, str],
    settings: RuSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule plot_feature_ru: R-U scatters of the first K eigenfeatures per
    architecture, with the permuted-training-label null cloud."""
    from ntkadv.features.summary import ru_panel

    s, null = settings, settings.null
    panels = {}
    for path in inputs["scores"]:
        panel = ru_panel(path, s.top_k, null.permutations, null.seed)
        panel["title"] = (
            f"{panel['dataset']} {arch_label(panel['arch'])} (m={panel['m']})"
        )
        panels[(panel["dataset"], panel["arch"])] = panel
    title = f"{s.title}; grey: {null.permutations} permuted training labels"
    save_figure(ru_grid(panels, s.nonrobust_max, title), outputs["png"], log)


def plot_feature_gradients(
    inputs: dict[str, str],
    outputs: dict[str, str],
    settings: None,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule plot_feature_gradients: loss-gradient images of single eigenfeatures at
    one test image (the notebook's eigen-indices at n_train, null space left out)."""
    from ntkadv import data
    from ntkadv.features import scoring

    s, a = h5io.read(inputs["scores"]), h5io.read_attrs(inputs["scores"])
    t, shape = a["image_test_index"], a["image_shape"]
    x_test = data.load_prepared(inputs["data"])["x_test"]
    shown = s["image_indices"]
    lam = s["eigvals"][s["indices"].searchsorted(shown)]
    fig = gradient_grid(
        scoring.gradient_images(s["gradients"]),
        shown,
        x_test[t].reshape(-1),
        shape,
        f"{a['dataset']} {arch_label(a['arch'])} (n={a['n_train']}): "
        f"min-max normalised ∇ₓL(f⁽ⁱ⁾(x), y), test image {t}",
        labels=[f"λ={v:.2g}" for v in lam],
    )
    save_figure(fig, outputs["png"], log)


def consistency_matrices(
    table: pd.DataFrame, top: int
) -> tuple[list[str], dict[str, tuple[np.ndarray, np.ndarray | None]]]:
    """The (A, A) panels of `consistency_heatmaps` from the long consistency table
    (`ntkadv.features.consistency`, one row per ordered pair): (archs in table
    order, panel title -> (values, permuted-label null or None))."""
    archs = list(dict.fromkeys(table["arch_a"]))

    def wide(key: str) -> np.ndarray:
        pivot = table.pivot(index="arch_a", columns="arch_b", values=key)
        return pivot.loc[archs, archs].to_numpy()

    return archs, {
        "Spearman(robustness)\n(null: permuted labels)": (
            wide("spearman_robustness"),
            wide("spearman_robustness_null"),
        ),
        "Spearman(usefulness)\n(null: permuted labels)": (
            wide("spearman_usefulness"),
            wide("spearman_usefulness_null"),
        ),
        f"top-{top} eigenspace overlap\n(mean cos², label-free)": (
            wide("subspace_overlap"),
            None,
        ),
    }


def plot_feature_consistency(
    inputs: dict[str, str],
    outputs: dict[str, str],
    settings: ConsistencySettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule plot_feature_consistency: heatmaps of cross-architecture consistency."""
    table = pd.read_csv(inputs["csv"])
    archs, matrices = consistency_matrices(table, settings.top)
    perms = int(table["permutations"].iloc[0])
    fig = consistency_heatmaps(
        archs,
        matrices,
        f"{ids['dataset']}: consistency of NTK eigenfeatures across kernels "
        f"(null: mean over {perms} training-label permutations)",
    )
    save_figure(fig, outputs["png"], log)


def plot_topr_kernels(
    inputs: dict[str, str],
    outputs: dict[str, str],
    settings: None,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule plot_topr_kernels: accuracy of the top-r robust kernels against r."""
    from ntkadv.claims.core import majority_rate

    res, a = h5io.read(inputs["topr"]), h5io.read_attrs(inputs["topr"])
    curves = {k: v.mean(axis=-1) for k, v in res.items() if k in TOPR_KEYS}
    fig = topr_curves(
        res["r"],
        curves,
        a,
        majority_rate(res["labels_eval"]),
        f"{a['dataset']} {arch_label(a['arch'])}: top-r robust kernels "
        f"(ranked on {a['n_val']}, evaluated on {a['n_eval']} test points)",
        null_own=res["fgsm_own_sets"][1:].mean(axis=-1),
    )
    save_figure(fig, outputs["png"], log)
