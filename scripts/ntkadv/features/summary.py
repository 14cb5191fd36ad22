"""CPU-side rules of the features stage: consistency table, notebook rows, claims.

NumPy / pandas only, so these rules run in the plot environment.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd

from ntkadv import h5io


def run_consistency(
    archs: Sequence[str],
    scores: Sequence[str],
    spectra: Sequence[str],
    out_csv: str,
    dataset: str,
    top: int,
    top_k: int,
    log: logging.Logger,
) -> None:
    """Rule measure_feature_consistency: every pair of architectures (finding 3)."""
    from ntkadv.features.consistency import consistency_table

    adv, clean, vecs = {}, {}, {}
    for arch, path, eigh in zip(archs, scores, spectra, strict=True):
        s = h5io.read(path, ["indices", "correct_clean", "correct_adv"])
        first = s["indices"] < top_k
        adv[arch], clean[arch] = s["correct_adv"][first], s["correct_clean"][first]
        vecs[arch] = h5io.read(eigh, ["eigvecs"])["eigvecs"][:, :top]
    table = consistency_table(adv, clean, vecs)
    table.insert(0, "dataset", dataset)
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
    top_k: int,
    nonrobust_max: float,
    consistency_top: int,
    log: logging.Logger,
) -> None:
    """Rule summarize_feature_claims: findings 1, 2, 3, 7 and 14."""
    from ntkadv.features import claims

    rows, prop1 = [], {}
    by_dataset: dict[str, dict] = {}
    for path in scores:
        s, a = h5io.read(path), h5io.read_attrs(path)
        first = s["indices"] < top_k
        by_dataset.setdefault(a["dataset"], {"chance": 1 / len(a["classes"])})
        by_dataset[a["dataset"]][a["arch"]] = {
            "index": s["indices"][first],
            "usefulness": s["usefulness"][first],
            "robustness": s["robustness"][first],
        }
        if a["prop1"]:
            prop1[f"{a['dataset']}/{a['arch']}"] = a["prop1"]
    for ds, by_arch in by_dataset.items():
        chance = by_arch.pop("chance")
        rows += claims.spectrum_claims(ds, by_arch, chance, nonrobust_max)
    for path in consistency:
        table = pd.read_csv(path)
        rows.append(
            claims.consistency_claim(table["dataset"].iloc[0], table, consistency_top)
        )
    for path in topr:
        res, a = h5io.read(path), h5io.read_attrs(path)
        rows.append(claims.topr_claim(a["dataset"], a["task"], res))
    rows.append(claims.proposition1_claim(prop1))
    out = pd.DataFrame(rows).sort_values("finding", kind="stable")
    out.to_csv(out_csv, index=False)
    log.info("claims:\n%s", out.to_string())
