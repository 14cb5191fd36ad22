"""Record layout of the transfer outputs (dependency-free: used by CPU-side rules)."""

from __future__ import annotations

#: Per-epoch scalar metrics of `run_transfer` (each an (E,) array).
METRICS = (
    "epoch",
    "t",
    "cosine",
    "acc_clean",
    "acc_own",
    "acc_ntk",
    "rel_output_error",
    "train_loss",
    "weight_change",
)


#: Per-run attributes of a `train_twolayer_net` output kept in the run table.
RUN_ATTRS = (
    "dataset",
    "width",
    "seed",
    "n_train",
    "lr",
    "gd_stability",
    "align_epoch",
    "time_factor",
    "time_factor_error",
    "time_factor_error_at_1",
    "train_seconds",
)
