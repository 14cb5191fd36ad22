"""Record layout of the transfer outputs (dependency-free: used by CPU-side rules)."""

from __future__ import annotations

#: Per-epoch scalar metrics of `run_transfer` (each an (E,) array). Robust
#: accuracies count a test point only if it is correct clean AND after the
#: perturbation (own FGSM, the NTK's FGSM, a random-sign perturbation of the same ε).
METRICS = (
    "epoch",
    "t",
    "cosine",
    "cosine_mismatched",
    "cosine_same_class",
    "acc_clean",
    "acc_own",
    "acc_ntk",
    "acc_random",
    "rel_output_error",
    "train_loss",
    "weight_change",
)

#: Per-epoch, per-test-point arrays of `run_transfer` (each (E, b)), kept so that the
#: claims can bootstrap over test points: cosine of the NTK and net loss gradients
#: of the same point, of point i (NTK) with point `nulls.mismatched(b)[i]` (net),
#: of point i with the next test point of the same class (`same_class_partners`),
#: and correctness clean / clean AND after each perturbation.
POINT_ARRAYS = (
    "cosine_per_point",
    "cosine_mismatched_per_point",
    "cosine_same_class_per_point",
    "correct_clean",
    "correct_own",
    "correct_ntk",
    "correct_random",
)

#: Per-epoch metrics of the NTK predictor f_t (`ntk_transfer_reference`), (E,).
REFERENCE_METRICS = ("epoch", "acc_clean", "acc_own", "acc_random")

#: Per-epoch, per-test-point correctness of f_t, (E, b).
REFERENCE_POINT_ARRAYS = ("correct_clean", "correct_own", "correct_random")

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
