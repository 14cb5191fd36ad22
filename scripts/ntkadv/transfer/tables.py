"""Per-epoch table of every transfer run (pandas; no jax)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ntkadv.transfer.records import METRICS


def epoch_table(
    runs: Sequence[tuple[Mapping[str, Any], Mapping[str, np.ndarray]]],
    references: Mapping[str, Mapping[str, np.ndarray]],
):
    """Long-form per-epoch table of every run, with the NTK's own accuracies.

    Args:
        runs: (meta, arrays) per run; meta has dataset, width, seed; arrays hold the
            `METRICS` of `run_transfer`.
        references: dataset -> `ntk_transfer_reference` arrays (epoch, acc_clean,
            acc_own).

    Returns:
        pandas DataFrame with columns dataset, width, seed, then `METRICS`, then
        ntk_acc_clean, ntk_acc_own.
    """
    import pandas as pd

    frames = []
    for meta, arrays in runs:
        frame = pd.DataFrame({key: np.asarray(arrays[key]) for key in METRICS})
        ref = references[meta["dataset"]]
        ntk = pd.DataFrame(
            {
                "epoch": np.asarray(ref["epoch"]),
                "ntk_acc_clean": np.asarray(ref["acc_clean"]),
                "ntk_acc_own": np.asarray(ref["acc_own"]),
            }
        )
        frame = frame.merge(ntk, on="epoch", how="left")
        frame.insert(0, "seed", int(meta["seed"]))
        frame.insert(0, "width", int(meta["width"]))
        frame.insert(0, "dataset", str(meta["dataset"]))
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    return table.sort_values(["dataset", "width", "seed", "epoch"], ignore_index=True)
