"""Rules train_dynamics_network and train_linearized_network (supp. App. E, E.1)."""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import TYPE_CHECKING

import numpy as np

from ntkadv import h5io
from ntkadv.typing import KernelInputs, Regime

if TYPE_CHECKING:
    from ntkadv.dynamics.training import RunSpec


@dataclasses.dataclass(frozen=True)
class DynamicsSettings:
    """Params of the training rules: the one settings type of a training job (one
    dataset, regime and seed; see config dynamics.datasets.*).

    The run's `ntkadv.dynamics.training.RunSpec` (what determines its trajectory
    and checkpoint fingerprint, recorded as the run file's ``spec`` attrs) is built
    from these settings and the data's class count by `run_spec`.

    Attributes:
        model: 'cnn' (MNIST) or 'cnn_mega' (CIFAR-10).
        n_train: SGD examples (first n of the data file; None = all).
        batch_size, epochs, learning_rate: SGD.
        kernel_batch: B, the eNTK is tracked on the first B training images.
        ntk_block: eNTK tile size (0 = whole batch).
        alpha: PGD step; pgd_steps / eval_pgd_steps: training / evaluation PGD
            (pgd_steps None outside the PGD regime).
        n_eval_train, n_eval_test: per-epoch evaluation subsets (None = all).
        kernel_inputs, ntk_implementation, eval_batch: shared dynamics keys.
        eps: the dataset's ℓ∞ budget; seed: initialisation seed.
        regime: 'standard', 'fgsm' or 'pgd' (the training attack; linearised runs
            are PGD runs).
        lin_epoch: None, or linearise after this many epochs (supp. E.1; the run
            starts from its PGD run's snapshot, input ``source``).
        snapshots: epochs whose parameters the run keeps (the linearisation epochs
            of a PGD run).
    """

    model: str
    n_train: int | None
    batch_size: int
    epochs: int
    learning_rate: float
    kernel_batch: int
    ntk_block: int
    alpha: float
    pgd_steps: int | None
    eval_pgd_steps: int
    n_eval_train: int | None
    n_eval_test: int | None
    kernel_inputs: KernelInputs
    ntk_implementation: str
    eval_batch: int
    eps: float
    seed: int
    regime: Regime
    lin_epoch: int | None
    snapshots: tuple[int, ...]

    def run_spec(self, num_classes: int) -> RunSpec:
        """The run's `RunSpec` for a network with `num_classes` outputs: the
        training attack of the regime, PGD for the evaluation, and no kernel
        tracking for a linearised run (the linear model's eNTK is constant)."""
        from ntkadv.dynamics.steps import AttackSpec
        from ntkadv.dynamics.training import RunSpec

        return RunSpec(
            model=self.model,
            num_classes=num_classes,
            seed=self.seed,
            learning_rate=self.learning_rate,
            batch_size=self.batch_size,
            epochs=self.epochs,
            train_attack=AttackSpec.for_regime(
                self.regime, self.eps, self.alpha, self.pgd_steps
            ),
            eval_attack=AttackSpec(
                eps=self.eps, alpha=self.alpha, steps=self.eval_pgd_steps
            ),
            kernel_batch=0 if self.lin_epoch is not None else self.kernel_batch,
            kernel_inputs=self.kernel_inputs,
            ntk_implementation=self.ntk_implementation,
            ntk_block=self.ntk_block,
            eval_batch=self.eval_batch,
            lin_epoch=self.lin_epoch,
        )


def checkpoint_dir(run_path: str) -> str:
    """The resumable checkpoint of a run: ``ckpt/`` next to its run.h5."""
    return os.path.join(os.path.dirname(run_path), "ckpt")


#: the job's settings recorded in a run file's ``settings`` attrs (the dataset's
#: dynamics entry; regime, seed, lin_epoch and snapshots have attrs of their own)
_RECORDED = (
    "model",
    "n_train",
    "batch_size",
    "epochs",
    "learning_rate",
    "kernel_batch",
    "ntk_block",
    "alpha",
    "pgd_steps",
    "eval_pgd_steps",
    "n_eval_train",
    "n_eval_test",
    "kernel_inputs",
    "ntk_implementation",
    "eval_batch",
    "eps",
    "seed",
)


def train_dynamics_network(
    inputs: dict[str, str],
    outputs: dict[str, str],
    settings: DynamicsSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Train one regime and seed, resumably (rules train_dynamics_network and
    train_linearized_network).

    Inputs ``data`` (the prepared dataset) and, for a linearised run, ``source``:
    the PGD run of the same seed; the run starts from its snapshot after
    `lin_epoch` epochs and its metrics up to there (training is deterministic, so
    this equals retraining them). Output ``run``; the checkpoint is
    `checkpoint_dir` of it.

    Raises:
        DivergenceError: a non-finite loss, parameter, logit or kernel.
    """
    from ntkadv.data import load_prepared
    from ntkadv.dynamics import training
    from ntkadv.dynamics.checkpoint import run_with_checkpoints

    s, lin_epoch, source_run = settings, settings.lin_epoch, inputs.get("source")
    ds = load_prepared(inputs["data"])
    subsets = training.prefix_subsets(ds, s.n_train, s.n_eval_train, s.n_eval_test)
    spec = s.run_spec(len(ds["attrs"]["classes"]))
    run = training.DynamicsRun(spec, **subsets)
    log.info("spec %s; %d SGD steps/epoch", spec, run.steps_per_epoch)
    attrs = h5io.provenance(
        dataset=ids["dataset"],
        regime=s.regime,
        seed=s.seed,
        lin_epoch=-1 if lin_epoch is None else lin_epoch,
        spec=spec.to_dict(),
        settings={k: getattr(s, k) for k in _RECORDED},
        kernel_inputs=spec.kernel_inputs,
        kernel_ordering="row a*B+i = (logit a, kernel-batch example i); "
        "= nt eNTK (B,B,k,k).transpose([3,1,2,0]).reshape(kB,kB)",
        n_sgd_train=len(subsets["x_train"]),
        n_eval_train=len(subsets["x_eval_train"]),
        n_eval_test=len(subsets["x_eval_test"]),
        labels_eval_test=np.asarray(subsets["labels_eval_test"]).tolist(),
        classes=list(ds["attrs"]["classes"]),
        code_version=training.code_version(),
        snapshots=list(s.snapshots),
        source_run=source_run or "",
    )
    fingerprint = spec.fingerprint(*(subsets[k] for k in sorted(subsets)))
    start = None
    if source_run is not None:
        start = _branch_from(run, source_run, lin_epoch, log)
    where = {"dataset": ids["dataset"], "regime": s.regime, "seed": s.seed}
    if lin_epoch is not None:
        where["linearised after"] = lin_epoch
    run_with_checkpoints(
        run,
        outputs["run"],
        checkpoint_dir(outputs["run"]),
        attrs,
        log,
        fingerprint,
        snapshots=s.snapshots,
        start=start,
        where=where,
        lr_key=f"dynamics.datasets.{ids['dataset']}.learning_rate",
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
