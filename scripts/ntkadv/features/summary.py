"""CPU-side rules of the features stage: consistency table, notebook rows, claims.

One task per rule, named after it (measure_feature_consistency,
tabulate_notebook_features, summarize_feature_claims), with typed settings.

NumPy / pandas only, so these rules run in the CPU environment: the null
permutations are rescored from the label-free projections of scores.h5
(`load_correctness`), never by evaluating a kernel.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import pandas as pd

from ntkadv import h5io


@dataclasses.dataclass(frozen=True)
class FeatureNull:
    """The training-label permutations every CPU rule of the stage rescores.

    Attributes:
        permutations: features.null_permutations.
        seed: the config seed (`ntkadv.claims.nulls.label_permutations`).
    """

    permutations: int
    seed: int


@dataclasses.dataclass(frozen=True)
class ConsistencySettings:
    """Params of rule measure_feature_consistency.

    Attributes:
        archs: the architectures, in the order of the scores / eigh inputs.
        top: leading eigenvectors of the subspace overlap (consistency_top).
        top_k: first K eigenfeatures rescored.
        null: the label permutations.
    """

    archs: tuple[str, ...]
    top: int
    top_k: int
    null: FeatureNull


@dataclasses.dataclass(frozen=True)
class NotebookFeatureSettings:
    """Params of rule tabulate_notebook_features.

    Attributes:
        indices: the notebook's eigen-indices (features.image_indices).
        reference_n: training points of the notebook (features.image_reference_n).
        n_train: training points of the notebook dataset here.
    """

    indices: tuple[int, ...]
    reference_n: int
    n_train: int


@dataclasses.dataclass(frozen=True)
class FrequencySettings:
    """features.frequency: k images at each end of the spectrum, the cut."""

    k: int
    cut: float


@dataclasses.dataclass(frozen=True)
class FeatureClaimSettings:
    """Params of rule summarize_feature_claims (ntkadv.features.claims).

    Attributes:
        top_k: first K eigenfeatures of the spectrum claims.
        nonrobust_max: robustness below which a useful feature is non-robust.
        consistency_top: leading eigenvectors of the subspace overlap.
        bands: eigen-index bands {top, tail} of finding 1.
        frequency: the frequency claim's k and cut.
        null: the label permutations.
    """

    top_k: int
    nonrobust_max: float
    consistency_top: int
    bands: dict[str, list[int]]
    frequency: FrequencySettings
    null: FeatureNull


def load_correctness(
    path: str,
    top_k: int | None,
    permutations: int,
    seed: int,
    extra: int | None = None,
    sweep: int = 0,
) -> tuple[dict[str, Any], Any]:
    """Rescore the first top_k features of a scores.h5 (None: every scored
    feature, including those spread over the spectrum and the image indices)
    under the true training labels and `permutations` label permutations (no
    kernel evaluation).

    Args:
        extra: None: at the paper's ε (attrs eps); i: at the i-th extra ε
            (attrs extra_eps[i], the FGSM sides p_plus_extra[i] / p_minus_extra[i]
            with the same clean projections).
        sweep: on a binary task, also rescore under `sweep` permutations (the
            first `permutations` of them are the ones above) for finding 1's
            orientation test (`ArchCorrectness.sweep`); 0 or a multiclass task:
            none (1,000 multiclass rescorings cost minutes per kernel).

    Returns:
        (attrs, `ntkadv.features.stats.ArchCorrectness`).

    Raises:
        ValueError: the stored true-label scores disagree with the rescoring (the
            file is corrupt or from another version; delete it to rebuild).
    """
    import numpy as np

    from ntkadv.claims.nulls import label_permutations
    from ntkadv.features.rescore import (
        LabelFree,
        permuted_targets,
        rescore,
        robust_sweep,
    )
    from ntkadv.features.stats import ArchCorrectness, OrientationSweep

    arr, a = h5io.read(path), h5io.read_attrs(path)
    first = arr["indices"] < (top_k if top_k is not None else np.inf)
    stored = arr["correct_robust"]
    if extra is not None:
        arr |= {k: arr[f"{k}_extra"][extra] for k in ("p_plus", "p_minus")}
        stored = arr["correct_robust_extra"][extra]
    lf = LabelFree.from_arrays(arr).select(first)
    perms = label_permutations(int(a["n_train"]), permutations, seed)
    ys = np.concatenate([arr["y_train"][None], permuted_targets(arr["y_train"], perms)])
    r = rescore(lf, ys, arr["y_eval"], a["task"])
    if not np.array_equal(r.correct_robust[0], stored[first]):
        raise ValueError(
            f"{path}: stored robustness differs from its label-free projections "
            "(corrupt or stale file: delete it so rule score_features rebuilds it)"
        )
    orient = None
    if sweep and a["task"] == "binary":
        many = label_permutations(int(a["n_train"]), sweep, seed)
        orient = OrientationSweep(
            *robust_sweep(lf, arr["y_train"], arr["y_eval"], a["task"], many)
        )
    return a, ArchCorrectness(
        arch=a["arch"],
        index=lf.indices,
        clean=r.correct_clean,
        robust=r.correct_robust,
        labels=np.asarray(arr["labels_eval"]),
        sweep=orient,
    )


def ru_panel(path: str, top_k: int, permutations: int, seed: int) -> dict[str, Any]:
    """One R-U panel: true-label scores of the first top_k features, the same under
    the permutations (flattened null cloud), the majority rate and the useful
    threshold (`ntkadv.plotting.features.ru_grid`), plus dataset, arch, m."""
    from ntkadv.claims.core import majority_rate
    from ntkadv.features.stats import useful_threshold

    a, c = load_correctness(path, top_k, permutations, seed)
    use, rob = c.clean.mean(axis=-1), c.robust.mean(axis=-1)
    maj = majority_rate(c.labels)
    return {
        "index": c.index,
        "usefulness": use[0],
        "robustness": rob[0],
        "null_usefulness": use[1:].ravel(),
        "null_robustness": rob[1:].ravel(),
        "majority": maj,
        "useful_min": useful_threshold(maj, c.m),
        "dataset": a["dataset"],
        "arch": a["arch"],
        "m": c.m,
    }


def measure_feature_consistency(
    inputs: dict[str, Any],
    outputs: dict[str, str],
    settings: ConsistencySettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule measure_feature_consistency: every pair of architectures (finding 3),
    with the same-permutation null of the Spearman correlations."""
    from ntkadv.features.consistency import consistency_table

    s, null = settings, settings.null
    index, clean, robust, vecs = {}, {}, {}, {}
    for arch, path, eigh in zip(s.archs, inputs["scores"], inputs["eigh"], strict=True):
        _, c = load_correctness(path, s.top_k, null.permutations, null.seed)
        index[arch], clean[arch], robust[arch] = c.index, c.clean, c.robust
        vecs[arch] = h5io.read(eigh, ["eigvecs"])["eigvecs"][:, : s.top]
    table = consistency_table(index, clean, robust, vecs)
    table.insert(0, "dataset", ids["dataset"])
    table.insert(len(table.columns), "permutations", null.permutations)
    table.to_csv(outputs["csv"], index=False)
    log.info("consistency:\n%s", table.to_string())


def notebook_feature_rows(
    scores: pd.DataFrame, indices: Sequence[int], n_train: int, reference_n: int
) -> pd.DataFrame:
    """Per-feature notebook rows: the notebook's indices mapped to n_train points."""
    from ntkadv.features.scoring import scale_feature_indices

    mapped = scale_feature_indices(indices, n_train, reference_n)
    # the notebook index each row stands for (identity when n_train = reference n)
    stands_for: dict[int, int] = {}
    for i in indices:
        j = int(scale_feature_indices([i], n_train, reference_n)[0])
        stands_for.setdefault(j, i)
    rows = scores[scores["eigen_index"].isin(mapped)].copy()
    rows.insert(3, "notebook_index", rows["eigen_index"].map(stands_for))
    rows.insert(4, "n_train", n_train)
    return rows


def tabulate_notebook_features(
    inputs: dict[str, str],
    outputs: dict[str, str],
    settings: NotebookFeatureSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule tabulate_notebook_features: the rows of the notebook's eigen-indices
    from a kernel's scores.csv (`notebook_feature_rows`)."""
    s = settings
    rows = notebook_feature_rows(
        pd.read_csv(inputs["csv"]), list(s.indices), int(s.n_train), s.reference_n
    )
    rows.to_csv(outputs["csv"], index=False)
    log.info("notebook reference rows:\n%s", rows.to_string())


@dataclasses.dataclass
class _ScoredFeatures:
    """What the claims read from every kernel's scores.h5, per dataset."""

    by_dataset: dict[str, list] = dataclasses.field(default_factory=dict)
    prop1: dict[str, dict] = dataclasses.field(default_factory=dict)
    tasks: dict[str, str] = dataclasses.field(default_factory=dict)
    n_train: dict[str, int] = dataclasses.field(default_factory=dict)
    images: dict[str, dict] = dataclasses.field(default_factory=dict)
    eps: dict[str, float] = dataclasses.field(default_factory=dict)
    #: (dataset, extra ε) -> every architecture's correctness at that ε.
    extra: dict[tuple[str, float], list] = dataclasses.field(default_factory=dict)


def _read_scores(paths: Sequence[str], null: FeatureNull) -> _ScoredFeatures:
    """Every scored feature rescored (`load_correctness`), the frequency images and
    Prop. 1 checks, grouped by dataset."""
    from ntkadv.features.claims import ORIENTATION_PERMUTATIONS as sweep

    out = _ScoredFeatures()
    for path in paths:
        a, c = load_correctness(path, None, null.permutations, null.seed, None, sweep)
        ds = a["dataset"]
        out.by_dataset.setdefault(ds, []).append(c)
        out.tasks[ds] = a["task"]
        out.n_train[ds] = int(a["n_train"])
        out.eps[ds] = float(a["eps"])
        for i, eps in enumerate(a.get("extra_eps", [])):
            _, ce = load_correctness(path, None, null.permutations, null.seed, i, sweep)
            out.extra.setdefault((ds, float(eps)), []).append(ce)
        img = h5io.read(path, ["frequency_indices", "frequency_gradients"])
        out.images.setdefault(ds, {})[a["arch"]] = (
            img["frequency_indices"],
            img["frequency_gradients"],
            list(a["image_shape"]),
        )
        if a["prop1"]:
            out.prop1.setdefault(ds, {})[f"{ds}/{a['arch']}"] = a["prop1"]
    return out


def _read_overlaps(paths: Sequence[str]) -> dict[str, dict[tuple[str, str], float]]:
    """dataset -> {(arch_a, arch_b): top-eigenspace overlap} of the consistency
    tables (pairs of distinct architectures)."""
    overlaps: dict[str, dict[tuple[str, str], float]] = {}
    for path in paths:
        table = pd.read_csv(path)
        off = table[table["arch_a"] != table["arch_b"]]
        overlaps[str(table["dataset"].iloc[0])] = {
            (str(r.arch_a), str(r.arch_b)): float(r.subspace_overlap)
            for r in off.itertuples(index=False)
        }
    return overlaps


def _dataset_rows(
    ds: str,
    scored: _ScoredFeatures,
    overlaps: dict[str, dict[tuple[str, str], float]],
    s: FeatureClaimSettings,
) -> list[dict[str, Any]]:
    """Findings 1, 2, 3 (and 14 on a binary task) of one dataset."""
    from ntkadv.features import claims

    archs, seed = scored.by_dataset[ds], s.null.seed
    fig = f"results/figures/features_{{}}_{ds}.png"
    rows = claims.spectrum_claims(
        ds,
        archs,
        top_k=s.top_k,
        nonrobust_max=s.nonrobust_max,
        bands=s.bands,
        figure=fig.format("ru"),
        seed=seed,
    )
    rows += claims.consistency_claims(
        ds,
        archs,
        overlaps=overlaps.get(ds, {}),
        n=scored.n_train[ds],
        top=s.consistency_top,
        top_k=s.top_k,
        figure=fig.format("consistency"),
        seed=seed,
    )
    rows.append(
        claims.frequency_claim(
            ds,
            scored.images.get(ds, {}),
            k=int(s.frequency.k),
            cut=float(s.frequency.cut),
            figure=fig.format("gradients"),
            seed=seed,
        )
    )
    if scored.tasks[ds] == "binary":
        rows.append(
            claims.proposition1_claim(
                ds, scored.prop1.get(ds, {}), fig.format("gradients")
            )
        )
    for (name, eps), extra in scored.extra.items():
        if name == ds:
            rows += claims.spectrum_claims(
                ds,
                extra,
                top_k=s.top_k,
                nonrobust_max=s.nonrobust_max,
                bands=s.bands,
                figure=fig.format("ru"),
                seed=seed,
                at_eps=(eps, scored.eps[ds]),
            )
    return rows


def _topr_rows(paths: Sequence[str]) -> list[dict[str, Any]]:
    """Finding 7 of every top-r result."""
    from ntkadv.features import claims

    rows = []
    for path in paths:
        res, a = h5io.read(path), h5io.read_attrs(path)
        figure = f"results/figures/features_topr_{a['dataset']}.png"
        rows.append(
            claims.topr_claim(
                a["dataset"],
                a["task"],
                res["r"],
                res["clean_sets"],
                res["fgsm_own_sets"],
                res["labels_eval"],
                figure,
            )
        )
        for i, eps in enumerate(a.get("extra_eps", [])):
            rows.append(
                claims.topr_claim(
                    a["dataset"],
                    a["task"],
                    res["r"],
                    res["extra_clean_sets"][i],
                    res["extra_fgsm_own_sets"][i],
                    res["labels_eval"],
                    figure,
                    at_eps=(float(eps), float(a["eps"])),
                )
            )
    return rows


def summarize_feature_claims(
    inputs: dict[str, Any],
    outputs: dict[str, str],
    settings: FeatureClaimSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule summarize_feature_claims: findings 1, 2, 3, 7 and 14 per dataset
    (every scored feature is rescored: finding 2 counts over all of them)."""
    from ntkadv.claims import core

    scored = _read_scores(inputs["scores"], settings.null)
    overlaps = _read_overlaps(inputs["consistency"])
    rows = []
    for ds in scored.by_dataset:
        rows += _dataset_rows(ds, scored, overlaps, settings)
    if "binary" not in scored.tasks.values():
        rows.append(
            core.missing_row(14, "all", "Proposition 1", "no binary feature dataset")
        )
    rows += _topr_rows(inputs["topr"])
    out = pd.DataFrame(rows, columns=core.COLUMNS)
    out = out.sort_values(["finding", "dataset"], kind="stable")
    out.to_csv(outputs["csv"], index=False)
    log.info(
        "claims:\n%s",
        out[["finding", "dataset", "verdict", "effect", "effect_se"]].to_string(),
    )
