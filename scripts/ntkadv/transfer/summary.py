"""Rules aggregate_transfer and summarize_transfer_claims (pandas / NumPy; no jax).

Each task has the entry signature of every rule (scripts/_common.call):
``(inputs, outputs, settings, ids, log)``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from ntkadv import h5io
from ntkadv.transfer.records import (
    METRICS,
    POINT_ARRAYS,
    REFERENCE_METRICS,
    RUN_ATTRS,
)


@dataclasses.dataclass(frozen=True)
class TransferClaimsSettings:
    """Params of rule summarize_transfer_claims.

    Attributes:
        criteria: config transfer.criteria {min_cosine, max_robust_gap,
            max_seed_std, bootstrap_reps}.
        align_epoch: transfer.align_epoch.
        seed: config seed (bootstrap resamples).
    """

    criteria: dict[str, float]
    align_epoch: int
    seed: int


def aggregate_transfer(
    inputs: dict[str, list[str]],
    outputs: dict[str, str],
    settings: None,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Write the epoch table (outputs['epochs']) and the run table (['runs']).

    With no runs (the stage disabled) both tables are written with their header only.

    Args:
        inputs: ``references`` (ntk_reference.h5 of every dataset) and ``runs``
            (every train_twolayer_net output).
        outputs: ``epochs`` and ``runs`` (CSV).
        settings: None (the rule consumes no params); ids: none; log: the job's logger.
    """
    import pandas as pd

    from ntkadv.transfer.tables import epoch_table

    references, runs = inputs["references"], inputs["runs"]
    refs = {}
    for path in references:
        dataset = h5io.read_attrs(path)["dataset"]
        refs[dataset] = h5io.read(path, list(REFERENCE_METRICS))
    loaded, summaries = [], []
    for path in runs:
        meta = h5io.read_attrs(path)
        loaded.append((meta, h5io.read(path, list(METRICS))))
        summaries.append({k: meta[k] for k in RUN_ATTRS})
    table = epoch_table(loaded, refs)
    table.to_csv(outputs["epochs"], index=False)
    runs_table = pd.DataFrame(summaries, columns=list(RUN_ATTRS))
    runs_table.to_csv(outputs["runs"], index=False)
    log.info("%d epoch rows of %d runs", len(table), len(runs))


def load_runs(paths: Sequence[str]) -> list[Any]:
    """`TransferRuns` per dataset from the train_twolayer_net outputs.

    Every (width, seed) of a dataset must be present and share the evaluation
    epochs and test points.

    Raises:
        ValueError: naming the dataset and the missing run or the mismatching file.
    """
    from ntkadv.transfer.claims import TransferRuns

    by_dataset: dict[str, dict[tuple[int, int], tuple[str, dict]]] = {}
    seconds: dict[str, dict[int, list[float]]] = {}  # seed -> its runs' seconds
    for path in paths:
        meta = h5io.read_attrs(path)
        arrays = h5io.read(path, ["epoch", *POINT_ARRAYS])
        key = (int(meta["width"]), int(meta["seed"]))
        by_dataset.setdefault(str(meta["dataset"]), {})[key] = (path, arrays)
        seconds.setdefault(str(meta["dataset"]), {}).setdefault(key[1], []).append(
            float(meta.get("train_seconds", np.nan))
        )
    out = []
    for dataset, found in sorted(by_dataset.items()):
        widths = sorted({w for w, _ in found})
        seeds = sorted({s for _, s in found})
        first_path, first = next(iter(found.values()))
        stacked = {k: [] for k in POINT_ARRAYS}
        for w in widths:
            rows = {k: [] for k in POINT_ARRAYS}
            for s in seeds:
                if (w, s) not in found:
                    raise ValueError(f"{dataset}: no run of width {w}, seed {s}")
                path, arrays = found[(w, s)]
                if not np.array_equal(arrays["epoch"], first["epoch"]) or (
                    arrays["cosine_per_point"].shape != first["cosine_per_point"].shape
                ):
                    raise ValueError(
                        f"{dataset}: {path} has other epochs or test points than "
                        f"{first_path}"
                    )
                for k in POINT_ARRAYS:
                    rows[k].append(arrays[k])
            for k in POINT_ARRAYS:
                stacked[k].append(np.stack(rows[k]))
        a = {k: np.stack(v) for k, v in stacked.items()}
        out.append(
            TransferRuns(
                dataset=dataset,
                widths=np.asarray(widths),
                seeds=np.asarray(seeds),
                epochs=np.asarray(first["epoch"]),
                cosine=a["cosine_per_point"],
                cosine_mismatched=a["cosine_mismatched_per_point"],
                cosine_same_class=a["cosine_same_class_per_point"],
                correct_clean=a["correct_clean"].astype(bool),
                correct_own=a["correct_own"].astype(bool),
                correct_ntk=a["correct_ntk"].astype(bool),
                correct_random=a["correct_random"].astype(bool),
                seed_seconds=_seed_seconds(seconds[dataset]),
            )
        )
    return out


def _seed_seconds(by_seed: Mapping[int, Sequence[float]]) -> float | None:
    """Training seconds of one seed (all its widths), the median over seeds (the
    first run of a session also pays for compilation)."""
    total = float(np.median([np.sum(v) for v in by_seed.values()]))
    return total if np.isfinite(total) else None


def summarize_transfer_claims(
    inputs: dict[str, list[str]],
    outputs: dict[str, str],
    settings: TransferClaimsSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule summarize_transfer_claims: finding 5 rows (header only with no runs).

    Args:
        inputs: ``runs`` (every train_twolayer_net output).
        outputs: ``claims``: the stage's claims rows (CSV).
        settings: criteria, align_epoch and seed; ids: none; log: the job's logger.
    """
    from ntkadv.transfer.claims import transfer_claims

    s = settings
    claims = transfer_claims(
        load_runs(list(inputs["runs"])), s.criteria, s.align_epoch, s.seed
    )
    claims.to_csv(outputs["claims"], index=False)
    log.info("claims:\n%s", claims.to_string())
