"""Per-epoch table of every transfer run (pandas; no jax)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ntkadv.transfer.records import METRICS, REFERENCE_METRICS

#: Columns of the NTK predictor's own accuracies in the epoch table.
NTK_COLUMNS = [f"ntk_{k}" for k in REFERENCE_METRICS if k != "epoch"]
#: Columns of `epoch_table`.
COLUMNS = ["dataset", "width", "seed", *METRICS, *NTK_COLUMNS]


def epoch_table(
    runs: Sequence[tuple[Mapping[str, Any], Mapping[str, np.ndarray]]],
    references: Mapping[str, Mapping[str, np.ndarray]],
):
    """Long-form per-epoch table of every run, with the NTK's own accuracies.

    Args:
        runs: (meta, arrays) per run; meta has dataset, width, seed; arrays hold the
            `METRICS` of `run_transfer`.
        references: dataset -> `ntk_transfer_reference` arrays (`REFERENCE_METRICS`).

    Returns:
        pandas DataFrame with the `COLUMNS` (no rows when there are no runs).
    """
    import pandas as pd

    frames = []
    for meta, arrays in runs:
        frame = pd.DataFrame({key: np.asarray(arrays[key]) for key in METRICS})
        ref = references[meta["dataset"]]
        ntk = pd.DataFrame(
            {"epoch": np.asarray(ref["epoch"])}
            | {f"ntk_{k}": np.asarray(ref[k]) for k in REFERENCE_METRICS[1:]}
        )
        frame = frame.merge(ntk, on="epoch", how="left")
        frame.insert(0, "seed", int(meta["seed"]))
        frame.insert(0, "width", int(meta["width"]))
        frame.insert(0, "dataset", str(meta["dataset"]))
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    table = pd.concat(frames, ignore_index=True)[COLUMNS]
    return table.sort_values(["dataset", "width", "seed", "epoch"], ignore_index=True)
