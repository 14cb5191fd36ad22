"""Rules train_dynamics_network and train_linearized_network (supp. App. E, E.1)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import numpy as np

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
    snapshots: Sequence[int] = (),
    source_run: str | None = None,
) -> None:
    """Train one regime and seed, resumably (rules train_dynamics_network and
    train_linearized_network).

    Args:
        snapshots: epochs whose parameters the run keeps (the linearisation epochs
            of a PGD run).
        source_run: for a linearised run, the PGD run of the same seed: the run
            starts from its snapshot after `lin_epoch` epochs and its metrics up to
            there (training is deterministic, so this equals retraining them).

    Raises:
        DivergenceError: a non-finite loss, parameter, logit or kernel.
    """
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
        seed=s.seed,
        lin_epoch=-1 if lin_epoch is None else lin_epoch,
        spec=spec.to_dict(),
        settings=settings,
        kernel_inputs=spec.kernel_inputs,
        kernel_ordering="row a*B+i = (logit a, kernel-batch example i); "
        "= nt eNTK (B,B,k,k).transpose([3,1,2,0]).reshape(kB,kB)",
        n_sgd_train=len(subsets["x_train"]),
        n_eval_train=len(subsets["x_eval_train"]),
        n_eval_test=len(subsets["x_eval_test"]),
        labels_eval_test=np.asarray(subsets["labels_eval_test"]).tolist(),
        classes=list(ds["attrs"]["classes"]),
        code_version=training.code_version(),
        snapshots=list(snapshots),
        source_run=source_run or "",
    )
    fingerprint = spec.fingerprint(*(subsets[k] for k in sorted(subsets)))
    start = None
    if source_run is not None:
        start = _branch_from(run, source_run, lin_epoch, log)
    where = {"dataset": ids.get("dataset"), "regime": regime, "seed": s.seed}
    if lin_epoch is not None:
        where["linearised after"] = lin_epoch
    run_with_checkpoints(
        run,
        out_path,
        ckpt_dir,
        attrs,
        log,
        fingerprint,
        snapshots=snapshots,
        start=start,
        where=where,
        lr_key=f"dynamics.datasets.{ids.get('dataset')}.learning_rate",
    )


def _branch_from(run, source_run: str, lin_epoch: int | None, log: logging.Logger):
    """(state, history) after `lin_epoch` epochs of the PGD run `source_run`."""
    from ntkadv.dynamics.records import METRICS
    from ntkadv.dynamics.state import flatten_tree, unflatten_tree

    if lin_epoch is None:
        raise ValueError("a source run is only used by linearised runs")
    attrs = h5io.read_attrs(source_run)
    prefix = f"snapshot.{lin_epoch}.params"
    template = run.init_state().params
    names = list(flatten_tree(template, prefix))
    with h5io.open_read(source_run) as f:
        has_snapshot = all(name in f for name in names)
    if not has_snapshot:
        raise ValueError(
            f"{source_run} has no parameter snapshot after epoch {lin_epoch} "
            f"(snapshots {attrs.get('snapshots')}); rerun train_dynamics_network"
        )
    src, own = dict(attrs["spec"]), run.spec.to_dict()
    for key in (
        "kernel_batch",
        "lin_epoch",
        "kernel_inputs",
        "ntk_implementation",
        "ntk_block",
    ):
        src.pop(key, None), own.pop(key, None)
    if src != own:
        raise ValueError(f"{source_run} was trained with another spec: {src} != {own}")
    arrays = h5io.read(source_run, [*names, *METRICS])  # not the eNTK series
    params = unflatten_tree(arrays, template, prefix)
    history = [{m: float(arrays[m][t]) for m in METRICS} for t in range(lin_epoch + 1)]
    log.info("branching off %s after epoch %d", source_run, lin_epoch)
    return run.branch_state(params, lin_epoch), history
