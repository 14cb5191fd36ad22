"""Record layout of the dynamics runs (dependency-free: used by CPU-side rules)."""

from __future__ import annotations

#: Per-epoch scalar metrics of a run (each an (E+1,) array in run.h5).
METRICS = (
    "train_loss",
    "train_clean_acc",
    "train_robust_acc",
    "test_clean_acc",
    "test_robust_acc",
    "seconds",
)
