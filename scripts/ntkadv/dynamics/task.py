"""Rules train_dynamics_network and train_linearized_network (supp. App. E, E.1)."""

from __future__ import annotations

import dataclasses
import logging

from ntkadv import h5io


@dataclasses.dataclass(frozen=True)
class DynamicsSettings:
    """Params of the training rules (one dataset; see config dynamics.datasets.*).

    Attributes:
        model: 'cnn' (MNIST) or 'cnn_mega' (CIFAR-10).
        n_train: SGD examples (first n of the data file; None = all).
        batch_size, epochs, learning_rate: SGD.
        kernel_batch: B, the eNTK is tracked on the first B training images.
        ntk_block: eNTK tile size (0 = whole batch).
        alpha: PGD step; pgd_steps / eval_pgd_steps: training / evaluation PGD.
        n_eval_train, n_eval_test: per-epoch evaluation subsets (None = all).
        kernel_inputs, ntk_implementation, eval_batch: shared dynamics keys.
        eps: the dataset's ℓ∞ budget; seed: initialisation seed.
    """

    model: str
    n_train: int | None
    batch_size: int
    epochs: int
    learning_rate: float
    kernel_batch: int
    ntk_block: int
    alpha: float
    pgd_steps: int
    eval_pgd_steps: int
    n_eval_train: int | None
    n_eval_test: int | None
    kernel_inputs: str
    ntk_implementation: str
    eval_batch: int
    eps: float
    seed: int


def run_training(
    data_path: str,
    out_path: str,
    ckpt_dir: str,
    s: DynamicsSettings,
    regime: str,
    lin_epoch: int | None,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Train one regime (optionally linearised after `lin_epoch`), resumably."""
    from ntkadv.data import load_prepared
    from ntkadv.dynamics import training
    from ntkadv.dynamics.checkpoint import run_with_checkpoints

    ds = load_prepared(data_path)
    settings = dataclasses.asdict(s)
    subsets = training.prefix_subsets(ds, s.n_train, s.n_eval_train, s.n_eval_test)
    n_classes = len(ds["attrs"]["classes"])
    spec = training.spec_from_settings(
        settings, regime, s.eps, s.seed, n_classes, lin_epoch
    )
    run = training.DynamicsRun(spec, **subsets)
    log.info("spec %s; %d SGD steps/epoch", spec, run.steps_per_epoch)
    attrs = h5io.provenance(
        **ids,
        regime=regime,
        lin_epoch=-1 if lin_epoch is None else lin_epoch,
        spec=spec.to_dict(),
        settings=settings,
        kernel_inputs=spec.kernel_inputs,
        kernel_ordering="row a*B+i = (logit a, kernel-batch example i); "
        "= nt eNTK (B,B,k,k).transpose([3,1,2,0]).reshape(kB,kB)",
        n_sgd_train=len(subsets["x_train"]),
        n_eval_train=len(subsets["x_eval_train"]),
        n_eval_test=len(subsets["x_eval_test"]),
        classes=list(ds["attrs"]["classes"]),
    )
    fingerprint = spec.fingerprint(subsets["x_train"], subsets["x_eval_test"])
    run_with_checkpoints(run, out_path, ckpt_dir, attrs, log, fingerprint)
