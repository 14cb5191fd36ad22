"""Figures of the NTK attack stage (paper Sec. 3, supp. App. B).

* `robustness_vs_time`: clean and robust accuracy of f_t against normalised training
  time τ = η·λ_max·t (log axis, t = ∞ at the right end), one panel per kernel — the
  abstract's "robust features are learned early" claim (docs/findings.md finding 4) —
  with the permuted-label machines (the same-run null control) in grey.
* `accuracy_vs_eps`: accuracy of f_∞ against the ℓ∞ budget, one panel per attack
  (and the random-sign control), one line per kernel.

Robust accuracy everywhere counts a point only if it is correct clean AND correct
attacked (the `accuracy` column of the attack table).
* `adversarial_examples`: clean image, perturbation (rescaled to the full grey range)
  and adversarial image for FGSM and PGD on f_∞, titled with the predicted classes.

The drawing functions take pandas tables / arrays and return a matplotlib Figure
(no file I/O); the rule tasks at the end (`plot_robustness_vs_time`,
`plot_accuracy_vs_eps`, `plot_adversarial_examples`) read the rule's inputs, draw
and save.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ntkadv import h5io
from ntkadv.plotting import save_figure, wrap_title

#: label, colour, marker of each attack (closed forms cite supp. equations).
ATTACK_STYLE: dict[str, tuple[str, str, str]] = {
    "clean": ("clean", "black", "o"),
    "fgsm": ("FGSM (Eq. 6/8)", "tab:blue", "s"),
    "pgd": ("PGD", "tab:red", "D"),
    "first_order": ("first-order, label-free (Eq. 16-18)", "tab:green", "^"),
    "max_l1": ("Max-of-ℓ1 (Eq. 20)", "tab:purple", "v"),
    "sum_dz": ("Sum-of-Δz (Eq. 22)", "tab:orange", "<"),
    "random_sign": ("random sign (control)", "tab:brown", "x"),
}
#: Line style, marker size and hollow marker of each attack in the accuracy-vs-time
#: panels. On a binary kernel machine FGSM, PGD and the first-order attack often
#: give the same accuracy: the series are drawn largest marker first, with hollow
#: markers of decreasing size and different dashes, so coinciding points nest
#: (square around diamond around triangle) instead of hiding each other.
CURVE_STYLE: dict[str, tuple[str | tuple, float, bool]] = {
    "clean": ("-", 6.0, False),
    "fgsm": ("-", 10.0, True),
    "pgd": ((0, (5, 2)), 7.5, True),
    "first_order": ((0, (1, 1.5)), 5.0, False),
    "max_l1": ((0, (3, 1, 1, 1)), 5.0, True),
    "sum_dz": ((0, (3, 1, 1, 1, 1, 1)), 4.0, True),
    "random_sign": ((0, (4, 2)), 5.0, False),
}
#: Marker and dash pattern of the i-th kernel in `accuracy_vs_eps` (sizes shrink
#: with i, so coinciding kernels show as nested hollow markers).
ARCH_MARKERS = ("s", "D", "o", "^", "v", "<", ">", "p")
ARCH_DASHES = ("-", (0, (5, 2)), (0, (2, 1.5)), (0, (1, 1.5)))
#: Style of the permuted-label (null) machines: label, colour, line, marker. Their
#: FGSM accuracy exists only at the times finding 4 reads (τ_early and ∞), so it is
#: drawn as points, not as a line through times that were not attacked.
NULL_STYLE = {
    "clean": ("null: clean", "0.55", "--", ""),
    "fgsm": ("null: FGSM (at τ_early, ∞)", "0.55", "none", "o"),
}


def _true_labels(table: pd.DataFrame) -> pd.DataFrame:
    """Rows of the true-label machine (tables without a labels column: all)."""
    return table[table["labels"] == "true"] if "labels" in table else table


def class_names(source: str, classes: Sequence[int]) -> list[str]:
    """Human-readable names of the kept classes, in label order (the data-source
    registry's, `ntkadv.data.sources.class_names`)."""
    from ntkadv.data.sources import class_names as names

    return names(source, classes)


def predicted_index(f: np.ndarray, task: str) -> np.ndarray:
    """(m,) class index in label order: 0/1 for binary (−1/+1), argmax otherwise."""
    f = np.asarray(f)
    if task == "binary":
        return (f[:, 0] >= 0).astype(int)
    return np.argmax(f, axis=1)


def _tau_axis(taus: np.ndarray) -> tuple[dict[float, float], list[float], list[str]]:
    """Map τ (with inf) to x positions; inf sits 1.5 decades right of the last τ."""
    finite = np.sort(np.unique(taus[np.isfinite(taus)]))
    top = finite.max() if finite.size else 1.0
    pos = {float(t): float(t) for t in finite}
    pos[float("inf")] = float(top * 10**1.5)
    decades = np.arange(np.floor(np.log10(finite.min())), np.ceil(np.log10(top)) + 1)
    ticks = [10.0**d for d in decades if 10.0**d <= top] + [pos[float("inf")]]
    labels = [f"$10^{{{int(d)}}}$" for d in decades if 10.0**d <= top] + ["∞"]
    return pos, ticks, labels


def _order(values: Sequence[str], preferred: Sequence[str]) -> list[str]:
    present = list(dict.fromkeys(values))
    return [v for v in preferred if v in present] + [
        v for v in present if v not in preferred
    ]


def robustness_vs_time(
    table: pd.DataFrame, dataset: str, arch_order: Sequence[str] = ()
) -> plt.Figure:
    """Clean and robust (default ε) accuracy of f_t vs τ, one panel per kernel.

    Args:
        table: rows of `ntkadv.attacks.attack_suite` for one dataset (columns arch,
            attack, tau, eps_mult, accuracy, n_eval).
        dataset: name for the title.
        arch_order: preferred panel order.
    """
    nulls = table[table["labels"] != "true"] if "labels" in table else table[:0]
    table = _true_labels(table)
    archs = _order(table["arch"], arch_order)
    ncol = min(4, len(archs))
    nrow = int(np.ceil(len(archs) / ncol))
    width = max(3.2 * ncol, 8.0)  # room for the title and legend with one panel
    fig, axes = plt.subplots(
        nrow, ncol, figsize=(width, 2.9 * nrow + 1.4), squeeze=False, sharey=True,
        layout="constrained",
    )  # fmt: skip
    pos, ticks, labels = _tau_axis(table["tau"].to_numpy(dtype=float))
    sel = table[(table["attack"] == "clean") | np.isclose(table["eps_mult"], 1.0)]
    for ax, arch in zip(axes.flat, archs, strict=False):
        sub = sel[sel["arch"] == arch]
        for z, attack in enumerate(_order(sub["attack"], list(ATTACK_STYLE))):
            rows = sub[sub["attack"] == attack].sort_values("tau")
            label, colour, marker = ATTACK_STYLE.get(attack, (attack, None, "x"))
            ls, ms, hollow = CURVE_STYLE.get(attack, ("-", 5.0, False))
            x = [pos[float(t)] for t in rows["tau"]]
            ax.plot(
                x,
                rows["accuracy"],
                ls=ls,
                lw=1.4,
                marker=marker,
                ms=ms,
                mew=1.3,
                mfc="none" if hollow else colour,
                color=colour,
                label=label,
                zorder=3 + z,
            )
        nul = nulls[
            (nulls["arch"] == arch)
            & ((nulls["attack"] == "clean") | np.isclose(nulls["eps_mult"], 1.0))
        ]
        for attack, (label, colour, ls, marker) in NULL_STYLE.items():
            rows = nul[nul["attack"] == attack].groupby("tau")["accuracy"].mean()
            if len(rows):
                x = [pos[float(t)] for t in rows.index]
                ax.plot(
                    x, rows.to_numpy(), ls=ls, marker=marker, ms=4, mfc="none",
                    color=colour, lw=1.2, label=label,
                )  # fmt: skip
        ax.set_xscale("log")
        ax.set_xticks(ticks, labels)
        ax.minorticks_off()
        ax.axvline(pos[float("inf")] / 10**0.75, color="0.8", lw=0.8, ls=":")
        n_eval = int(sub["n_eval"].iloc[0]) if len(sub) else 0
        ax.set_title(f"{arch} (n_eval={n_eval})", fontsize=9)
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(archs) :]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("normalised time τ = η λ_max t")
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy")
    handles = {}
    for ax in axes.flat:
        for h, n in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(n, h)
    names = list(handles)
    legend_cols = len(names) if width >= 2.6 * len(names) else 3
    fig.legend(
        [handles[n] for n in names],
        names,
        loc="outside lower center",
        ncol=legend_cols,
        fontsize=8,
        frameon=False,
    )
    at_eps = table[(table["attack"] != "clean") & np.isclose(table["eps_mult"], 1.0)]
    eps_text = f" (ε = {at_eps['eps'].iloc[0]:.4g})" if len(at_eps) else ""
    fig.suptitle(
        wrap_title(
            f"{dataset}: clean and robust accuracy of f_t vs training time{eps_text}; "
            "robust = correct clean AND attacked; grey: permuted-label machines; "
            "coinciding attacks: hollow markers nest",
            width,
            9,
        ),
        fontsize=9,
    )
    return fig


def accuracy_vs_eps(
    table: pd.DataFrame, dataset: str, arch_order: Sequence[str] = ()
) -> plt.Figure:
    """Accuracy of f_∞ vs ε, one panel per attack, one line per kernel (clean at ε=0).

    Args:
        table: rows for one dataset (columns arch, attack, tau, eps, accuracy).
        dataset: name for the title.
        arch_order: preferred line order.
    """
    table = _true_labels(table)
    inf = table[np.isinf(table["tau"].to_numpy(dtype=float))]
    clean = inf[inf["attack"] == "clean"].set_index("arch")["accuracy"]
    attacks = [a for a in _order(inf["attack"], list(ATTACK_STYLE)) if a != "clean"]
    archs = _order(inf["arch"], arch_order)
    colours = plt.get_cmap("tab10")
    width = max(3.4 * len(attacks), 6.0)
    fig, axes = plt.subplots(
        1, len(attacks), figsize=(width, 3.6), squeeze=False, sharey=True,
        layout="constrained",
    )  # fmt: skip
    for ax, attack in zip(axes[0], attacks, strict=True):
        for i, arch in enumerate(archs):
            rows = inf[(inf["attack"] == attack) & (inf["arch"] == arch)].sort_values(
                "eps"
            )
            if rows.empty:
                continue
            x = np.r_[0.0, rows["eps"].to_numpy()]
            y = np.r_[clean.get(arch, np.nan), rows["accuracy"].to_numpy()]
            marker, ls = ARCH_MARKERS[i % len(ARCH_MARKERS)], ARCH_DASHES[i % 4]
            ax.plot(
                x,
                y,
                ls=ls,
                marker=marker,
                ms=max(9.0 - 1.5 * i, 3.5),  # kernels often coincide: markers nest
                mew=1.2,
                mfc="none",
                color=colours(i % 10),
                label=arch,
                zorder=3 + i,
            )
        ax.set_title(ATTACK_STYLE.get(attack, (attack,))[0], fontsize=9)
        ax.set_xlabel("ℓ∞ budget ε")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("robust accuracy (clean AND attacked)", fontsize=8)
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(
        handles, names, loc="outside lower center", ncol=len(names), fontsize=8,
        frameon=False,
    )  # fmt: skip
    fig.suptitle(
        wrap_title(
            f"{dataset}: robust accuracy of the NTK predictor f_∞ vs ε "
            "(a point counts if correct clean AND attacked); coinciding kernels: "
            "hollow markers nest",
            width,
            10,
        ),
        fontsize=10,
    )
    return fig


def adversarial_examples(
    x_clean: np.ndarray,
    adversarial: Mapping[str, np.ndarray],
    predictions: Mapping[str, np.ndarray],
    labels: np.ndarray,
    names: Sequence[str],
    title: str,
) -> plt.Figure:
    """Rows of test images: clean, then (perturbation, adversarial) per attack.

    Args:
        x_clean: (p, H, W, C) clean images in [0, 1].
        adversarial: attack -> (p, H, W, C) adversarial images.
        predictions: "clean" and each attack -> (p,) predicted class index.
        labels: (p,) true class index.
        names: class names in label order.
        title: figure title.
    """
    p = x_clean.shape[0]
    cols = 1 + 2 * len(adversarial)
    fig, axes = plt.subplots(p, cols, figsize=(1.7 * cols, 2.3 * p), squeeze=False)

    def show(ax, img, text, colour="black"):
        img = np.clip(img, 0, 1)
        ax.imshow(
            img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1
        )
        ax.set_title(text, fontsize=7, color=colour)
        ax.set_xticks([])
        ax.set_yticks([])

    for i in range(p):
        truth = names[labels[i]]
        pc = names[predictions["clean"][i]]
        show(axes[i, 0], x_clean[i], f"clean: {pc}\n(true {truth})")
        for j, (attack, x_adv) in enumerate(adversarial.items()):
            delta = x_adv[i] - x_clean[i]
            scale = np.abs(delta).max() or 1.0
            show(
                axes[i, 1 + 2 * j], 0.5 + 0.5 * delta / scale,
                f"δ {ATTACK_STYLE.get(attack, (attack,))[0].split(' ')[0]}\n"
                f"‖δ‖∞={np.abs(delta).max():.3f}",
            )  # fmt: skip
            pa = predictions[attack][i]
            colour = "tab:red" if pa != labels[i] else "tab:green"
            show(axes[i, 2 + 2 * j], x_adv[i], f"adv: {names[pa]}", colour)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


# --- rule tasks: read the rule's inputs, draw, save ------------------------------


@dataclasses.dataclass(frozen=True)
class AccuracyFigureSettings:
    """Params of rules plot_robustness_vs_time and plot_accuracy_vs_eps.

    Attributes:
        archs: the attacked architectures in config order (panel / line order).
    """

    archs: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ExamplesSettings:
    """Params of rule plot_adversarial_examples.

    Attributes:
        arch: the kernel whose adversarial examples are shown (attacks.example_arch).
        n_examples: test images shown (the first n, one row each).
    """

    arch: str
    n_examples: int


def _accuracy_figure(
    draw: Callable[..., plt.Figure],
    inputs: dict[str, str],
    outputs: dict[str, str],
    settings: AccuracyFigureSettings,
    dataset: str,
    log: logging.Logger,
) -> None:
    """Draw `draw` from this dataset's rows of the attack accuracy table."""
    table = pd.read_csv(inputs["accuracy"])
    table = table[table["dataset"] == dataset]
    fig = draw(table, dataset, list(settings.archs))
    save_figure(fig, outputs["figure"], log, dpi=130)
    log.info("%d rows", len(table))


def plot_robustness_vs_time(
    inputs: dict[str, str],
    outputs: dict[str, str],
    settings: AccuracyFigureSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule plot_robustness_vs_time: clean and robust accuracy of f_t vs training
    time (`robustness_vs_time`) from results/tables/attacks_accuracy.csv."""
    _accuracy_figure(robustness_vs_time, inputs, outputs, settings, ids["dataset"], log)


def plot_accuracy_vs_eps(
    inputs: dict[str, str],
    outputs: dict[str, str],
    settings: AccuracyFigureSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule plot_accuracy_vs_eps: accuracy of f_∞ vs the ℓ∞ budget per attack
    (`accuracy_vs_eps`) from results/tables/attacks_accuracy.csv."""
    _accuracy_figure(accuracy_vs_eps, inputs, outputs, settings, ids["dataset"], log)


def _examples_at_infinity(
    path: str, p: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Any]]:
    """Outputs of f_∞ on the first p test images of an adversarial file, at the
    grid budget nearest its ε: (predictions f of "clean" and of each attack run at
    t = ∞, adversarial images of each such attack, the clean grid arrays)."""
    meta = h5io.read_attrs(path)
    grid = h5io.read(path, ["x_clean", "y", "taus", "eps_values"])
    j = len(grid["taus"]) - 1  # t = inf
    e = int(np.argmin(np.abs(grid["eps_values"] / meta["eps"] - 1.0)))
    preds = {"clean": h5io.read(path, [f"f/clean/t{j}"])[f"f/clean/t{j}"][:p]}
    adversarial = {}
    for attack in ("fgsm", "pgd"):
        key = f"{attack}/t{j}_e{e}"
        try:
            arr = h5io.read(path, [f"f/{key}", f"x_adv/{key}"])
        except KeyError:  # this attack was not run at t = inf (budget)
            continue
        preds[attack], adversarial[attack] = (
            arr[f"f/{key}"][:p],
            arr[f"x_adv/{key}"][:p],
        )
    return preds, adversarial, grid


def plot_adversarial_examples(
    inputs: dict[str, str],
    outputs: dict[str, str],
    settings: ExamplesSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule plot_adversarial_examples: clean, perturbation and NTK adversarial
    images of f_∞ at the dataset's ε."""
    path, p = inputs["adversarial"], settings.n_examples
    meta, attrs = h5io.read_attrs(path), h5io.read_attrs(inputs["data"])
    preds, adversarial, grid = _examples_at_infinity(path, p)
    task = meta["task"]
    fig = adversarial_examples(
        grid["x_clean"][:p],
        adversarial,
        {k: predicted_index(v, task) for k, v in preds.items()},
        predicted_index(grid["y"][:p], task),
        attrs.get("class_names")  # data files before class_names: from the source
        or class_names(attrs["source"], attrs["classes"]),
        f"{ids['dataset']}, {settings.arch} NTK, f_∞, ε = {meta['eps']:.4g}"
        " (adv title green: still correct, red: fooled)",
    )
    save_figure(fig, outputs["figure"], log, dpi=130)
