"""Rule aggregate_transfer: the per-epoch and per-run tables (pandas; no jax)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import pandas as pd

from ntkadv import h5io
from ntkadv.transfer.records import METRICS, RUN_ATTRS


def run_aggregate(
    references: Sequence[str],
    runs: Sequence[str],
    outputs: Mapping[str, str],
    log: logging.Logger,
) -> None:
    """Write the epoch table (outputs['epochs']) and the run table (['runs'])."""
    from ntkadv.transfer.tables import epoch_table

    refs = {}
    for path in references:
        refs[h5io.read_attrs(path)["dataset"]] = h5io.read(
            path, ["epoch", "acc_clean", "acc_own"]
        )
    loaded, summaries = [], []
    for path in runs:
        meta = h5io.read_attrs(path)
        loaded.append((meta, h5io.read(path, list(METRICS))))
        summaries.append({k: meta[k] for k in RUN_ATTRS})
    table = epoch_table(loaded, refs)
    table.to_csv(outputs["epochs"], index=False)
    pd.DataFrame(summaries).to_csv(outputs["runs"], index=False)
    log.info("%d epoch rows of %d runs", len(table), len(runs))
