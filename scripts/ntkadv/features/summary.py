"""CPU-side rules of the features stage: consistency table, notebook rows, claims.

NumPy / pandas only, so these rules run in the CPU environment: the null
permutations are rescored from the label-free projections of scores.h5
(`load_correctness`), never by evaluating a kernel.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pandas as pd

from ntkadv import h5io


def load_correctness(
    path: str, top_k: int | None, permutations: int, seed: int
) -> tuple[dict[str, Any], Any]:
    """Rescore the first top_k features of a scores.h5 (None: every scored
    feature, including those spread over the spectrum and the image indices)
    under the true training labels and `permutations` label permutations (no
    kernel evaluation).

    Returns:
        (attrs, `ntkadv.features.stats.ArchCorrectness`).

    Raises:
        ValueError: the stored true-label scores disagree with the rescoring (the
            file is corrupt or from another version; delete it to rebuild).
    """
    import numpy as np

    from ntkadv.claims.nulls import label_permutations
    from ntkadv.features.rescore import LabelFree, permuted_targets, rescore
    from ntkadv.features.stats import ArchCorrectness

    arr, a = h5io.read(path), h5io.read_attrs(path)
    first = arr["indices"] < (top_k if top_k is not None else np.inf)
    lf = LabelFree.from_arrays(arr).select(first)
    perms = label_permutations(int(a["n_train"]), permutations, seed)
    ys = np.concatenate([arr["y_train"][None], permuted_targets(arr["y_train"], perms)])
    r = rescore(lf, ys, arr["y_eval"], a["task"])
    if not np.array_equal(r.correct_robust[0], arr["correct_robust"][first]):
        raise ValueError(
            f"{path}: stored robustness differs from its label-free projections "
            "(corrupt or stale file: delete it so rule score_features rebuilds it)"
        )
    return a, ArchCorrectness(
        arch=a["arch"],
        index=lf.indices,
        clean=r.correct_clean,
        robust=r.correct_robust,
        labels=np.asarray(arr["labels_eval"]),
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


def run_consistency(
    archs: Sequence[str],
    scores: Sequence[str],
    spectra: Sequence[str],
    out_csv: str,
    dataset: str,
    top: int,
    top_k: int,
    permutations: int,
    seed: int,
    log: logging.Logger,
) -> None:
    """Rule measure_feature_consistency: every pair of architectures (finding 3),
    with the same-permutation null of the Spearman correlations."""
    from ntkadv.features.consistency import consistency_table

    index, clean, robust, vecs = {}, {}, {}, {}
    for arch, path, eigh in zip(archs, scores, spectra, strict=True):
        _, c = load_correctness(path, top_k, permutations, seed)
        index[arch], clean[arch], robust[arch] = c.index, c.clean, c.robust
        vecs[arch] = h5io.read(eigh, ["eigvecs"])["eigvecs"][:, :top]
    table = consistency_table(index, clean, robust, vecs)
    table.insert(0, "dataset", dataset)
    table.insert(len(table.columns), "permutations", permutations)
    table.to_csv(out_csv, index=False)
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


def run_claims(
    scores: Sequence[str],
    consistency: Sequence[str],
    topr: Sequence[str],
    out_csv: str,
    *,
    top_k: int,
    nonrobust_max: float,
    consistency_top: int,
    bands: dict[str, Sequence[int]],
    frequency: dict[str, float],
    permutations: int,
    seed: int,
    log: logging.Logger,
) -> None:
    """Rule summarize_feature_claims: findings 1, 2, 3, 7 and 14 per dataset
    (every scored feature is rescored: finding 2 counts over all of them)."""
    from ntkadv.claims import core
    from ntkadv.features import claims

    by_dataset: dict[str, list] = {}
    prop1: dict[str, dict] = {}
    tasks: dict[str, str] = {}
    n_train: dict[str, int] = {}
    images: dict[str, dict] = {}
    for path in scores:
        a, c = load_correctness(path, None, permutations, seed)
        by_dataset.setdefault(a["dataset"], []).append(c)
        tasks[a["dataset"]] = a["task"]
        n_train[a["dataset"]] = int(a["n_train"])
        img = h5io.read(path, ["frequency_indices", "frequency_gradients"])
        images.setdefault(a["dataset"], {})[a["arch"]] = (
            img["frequency_indices"],
            img["frequency_gradients"],
            list(a["image_shape"]),
        )
        if a["prop1"]:
            prop1.setdefault(a["dataset"], {})[f"{a['dataset']}/{a['arch']}"] = a[
                "prop1"
            ]
    overlaps: dict[str, dict[tuple[str, str], float]] = {}
    for path in consistency:
        table = pd.read_csv(path)
        off = table[table["arch_a"] != table["arch_b"]]
        overlaps[str(table["dataset"].iloc[0])] = {
            (str(r.arch_a), str(r.arch_b)): float(r.subspace_overlap)
            for r in off.itertuples(index=False)
        }
    rows = []
    for ds, archs in by_dataset.items():
        fig = f"results/figures/features_{{}}_{ds}.png"
        rows += claims.spectrum_claims(
            ds,
            archs,
            top_k=top_k,
            nonrobust_max=nonrobust_max,
            bands=bands,
            figure=fig.format("ru"),
            seed=seed,
        )
        rows += claims.consistency_claims(
            ds,
            archs,
            overlaps=overlaps.get(ds, {}),
            n=n_train[ds],
            top=consistency_top,
            top_k=top_k,
            figure=fig.format("consistency"),
            seed=seed,
        )
        rows.append(
            claims.frequency_claim(
                ds,
                images.get(ds, {}),
                k=int(frequency["k"]),
                cut=float(frequency["cut"]),
                figure=fig.format("gradients"),
                seed=seed,
            )
        )
        if tasks[ds] == "binary":
            rows.append(
                claims.proposition1_claim(
                    ds, prop1.get(ds, {}), fig.format("gradients")
                )
            )
    if "binary" not in tasks.values():
        rows.append(
            core.missing_row(14, "all", "Proposition 1", "no binary feature dataset")
        )
    for path in topr:
        res, a = h5io.read(path), h5io.read_attrs(path)
        rows.append(
            claims.topr_claim(
                a["dataset"],
                a["task"],
                res["r"],
                res["clean_sets"],
                res["fgsm_own_sets"],
                res["labels_eval"],
                f"results/figures/features_topr_{a['dataset']}.png",
            )
        )
    out = pd.DataFrame(rows, columns=core.COLUMNS)
    out = out.sort_values(["finding", "dataset"], kind="stable")
    out.to_csv(out_csv, index=False)
    log.info(
        "claims:\n%s",
        out[["finding", "dataset", "verdict", "effect", "effect_se"]].to_string(),
    )
