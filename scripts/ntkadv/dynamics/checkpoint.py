"""Checkpointed execution of a training run (rules train_*_network).

After every epoch the run's state goes to ``<ckpt>/state.h5`` (parameters, optimiser
state, linearisation point, completed epoch, metric history; written atomically) and
the epoch's eNTK to ``<ckpt>/kernel_<epoch>.h5`` (written atomically, *before* the
state that refers to it). A job killed at any point restarts from the last complete
epoch; because training is deterministic the result equals an uninterrupted run. The
checkpoint is used only if its fingerprint (run spec, code version, data and labels)
matches; an unreadable checkpoint (truncated or corrupt file, e.g. a full disk) is
discarded with a warning and training restarts from scratch. It is removed once the
final ``run.h5`` has been written.

Every epoch is checked before it is saved (:func:`check_epoch`): a non-finite loss,
parameter, logit or kernel fails the job with :class:`DivergenceError`, which names
the dataset, regime, seed, epoch and the config key to change. Nothing of the
diverged epoch is written, and no ``run.h5`` is produced.

PGD runs also keep *snapshots*: the parameters after the epochs at which the
linearised runs of supp. E.1 branch off (``snapshot.<epoch>.params.*`` in
``run.h5``), so a linearised run resumes from the PGD run instead of retraining its
first epochs.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ntkadv import h5io
from ntkadv.dynamics.records import METRICS
from ntkadv.dynamics.state import state_to_arrays

if TYPE_CHECKING:
    from ntkadv.dynamics.state import EpochRecord, RunState
    from ntkadv.dynamics.training import DynamicsRun


class DivergenceError(RuntimeError):
    """A training run produced non-finite numbers (loss, parameters, logits, eNTK)."""


def check_epoch(
    record: EpochRecord, run: DynamicsRun, where: dict[str, Any], key: str
) -> None:
    """Fail with :class:`DivergenceError` if `record` holds a non-finite number.

    Args:
        record: the epoch just computed (checked before anything is written).
        run: the run (its evaluation logits are checked on the test subset).
        where: dataset / regime / seed, for the message.
        key: the config key to change (the learning rate of the dataset).
    """
    import jax

    bad = []
    loss = record.metrics.get("train_loss", np.nan)
    if record.epoch > 0 and not np.isfinite(loss):
        bad.append(f"train loss {loss}")
    leaves = jax.tree_util.tree_flatten_with_path(record.state.params)[0]
    bad += [
        f"parameter {jax.tree_util.keystr(path)} non-finite"
        for path, leaf in leaves
        if not bool(np.all(np.isfinite(np.asarray(leaf))))
    ][:3]
    logits = run.logits(record.state, run.eval_sets["test"][0][: run.spec.eval_batch])
    if not np.all(np.isfinite(logits)):
        bad.append("test logits non-finite")
    elif np.abs(logits).max() > 1e15:
        bad.append(f"test logits of magnitude {np.abs(logits).max():.3g}")
    if record.kernel is not None and not np.all(np.isfinite(record.kernel)):
        bad.append("eNTK non-finite")
    if bad:
        context = ", ".join(f"{k} {v}" for k, v in where.items())
        raise DivergenceError(
            f"training diverged ({context}, epoch {record.epoch}, learning rate "
            f"{run.spec.learning_rate:g}): {'; '.join(bad)}; lower {key}. "
            "No run.h5 written."
        )


def check_attacks(record: EpochRecord, run: DynamicsRun, where: dict[str, Any]):
    """Verify the evaluation PGD of an epoch (`ntkadv.attacks.checks`).

    On both evaluation subsets: the reported robust accuracy (correct at every PGD
    iterate, x included) must not exceed clean accuracy, and for a network (not a
    linearised one) neither may the plain accuracy at the last iterate. A
    linearised model is discontinuous in x (`ntkadv.dynamics.steps.pgd_path_fn`),
    so an ascent step need not lower its accuracy; its last-iterate accuracy is
    logged but only the robust one is checked.

    Raises:
        AttackCheckError: naming dataset / regime / seed / epoch and the subset.
    """
    from ntkadv.attacks.checks import check_attack_accuracy

    attack = f"PGD-{run.spec.eval_attack.steps}"
    context = ", ".join(f"{k} {v}" for k, v in where.items())
    linear = record.state.lin_params is not None
    m = record.metrics
    for name, (x, _) in run.eval_sets.items():
        at = f"{context}, epoch {record.epoch}, {name} subset"
        clean = m[f"{name}_clean_acc"]
        check_attack_accuracy(clean, m[f"{name}_robust_acc"], len(x), attack, at)
        if not linear:
            check_attack_accuracy(
                clean, m[f"{name}_attacked_acc"], len(x), attack + " (last iterate)", at
            )


class Checkpoint:
    """Per-epoch checkpoint of a :class:`DynamicsRun` in directory `directory`."""

    def __init__(self, directory: str | Path, fingerprint: str, log: logging.Logger):
        self.dir = Path(directory)
        self.fingerprint = fingerprint
        self.log = log

    @property
    def state_path(self) -> Path:
        return self.dir / "state.h5"

    def kernel_path(self, epoch: int) -> Path:
        return self.dir / f"kernel_{epoch:05d}.h5"

    def snapshot_path(self, epoch: int) -> Path:
        return self.dir / f"snapshot_{epoch:05d}.h5"

    def load(self, run: DynamicsRun, snapshots: Sequence[int] = ()):
        """``(state, history)`` of the last complete epoch, or ``(None, [])``.

        A checkpoint of another run is ignored; an unreadable or incomplete one
        (truncated file, missing kernel or snapshot) is deleted with a warning.
        """
        if not self.state_path.exists():
            return None, []
        try:
            attrs = h5io.read_attrs(self.state_path)
            if attrs.get("fingerprint") != self.fingerprint:
                self.log.warning("checkpoint %s is for another run; ignored", self.dir)
                return None, []
            arrays = h5io.read(self.state_path)
            state = run.state_from_arrays(arrays)
            history = [
                {m: float(arrays[f"metric.{m}"][t]) for m in METRICS}
                for t in range(state.epoch + 1)
            ]
            needed = [self.snapshot_path(e) for e in snapshots if e <= state.epoch]
            if run.spec.kernel_batch > 0:
                needed += [self.kernel_path(t) for t in range(state.epoch + 1)]
            for path in needed:
                h5io.read_attrs(path)  # exists and opens
        except (OSError, KeyError, ValueError) as err:
            self.log.warning(
                "checkpoint %s is unreadable or incomplete (%s); discarded, "
                "training restarts from scratch",
                self.dir,
                str(err).splitlines()[0],
            )
            self.remove()
            return None, []
        self.log.info("resuming from the checkpoint after epoch %d", state.epoch)
        return state, history

    def save(
        self,
        record: EpochRecord,
        history: list[dict[str, float]],
        snapshots: Sequence[int] = (),
    ) -> None:
        """Write the epoch's kernel (and snapshot), then the state that completes it."""
        if record.kernel is not None:
            h5io.write(self.kernel_path(record.epoch), {"kernel": record.kernel})
        arrays = state_to_arrays(record.state)
        if record.epoch in snapshots:
            h5io.write(
                self.snapshot_path(record.epoch),
                {k: v for k, v in arrays.items() if k.startswith("params.")},
            )
        for m in METRICS:
            arrays[f"metric.{m}"] = np.array([h[m] for h in history])
        attrs = {"fingerprint": self.fingerprint, "epoch": record.epoch}
        h5io.write(self.state_path, arrays, attrs)

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def run_with_checkpoints(
    run: DynamicsRun,
    out_path: str | Path,
    ckpt_dir: str | Path,
    attrs: dict[str, Any],
    log: logging.Logger,
    fingerprint: str,
    *,
    snapshots: Sequence[int] = (),
    start: tuple[RunState, list[dict[str, float]]] | None = None,
    where: dict[str, Any] | None = None,
    lr_key: str = "dynamics.datasets.<dataset>.learning_rate",
) -> None:
    """Train (resuming if possible) and write ``run.h5``; see the module docstring.

    ``run.h5`` holds ``kernels`` ``(E+1, kB, kB)`` float32 (one chunk per epoch; only
    when kernels are tracked), one ``(E+1,)`` array per metric, ``epoch``,
    ``kernel_labels`` ``(B,)``, the final parameters ``params.<path>`` and the
    parameters after each epoch of `snapshots`, ``snapshot.<epoch>.params.<path>``.

    Args:
        snapshots: epochs whose parameters are kept (linearisation epochs).
        start: state and metric history to continue from when there is no
            checkpoint (a linearised run branching off its PGD run).
        where: dataset / regime / seed for divergence messages.
        lr_key: the config key a divergence message tells the user to lower.

    Raises:
        DivergenceError: an epoch produced non-finite numbers.
    """
    ckpt = Checkpoint(ckpt_dir, fingerprint, log)
    state, history = ckpt.load(run, snapshots)
    if state is None and start is not None:
        state, history = start[0], list(start[1])
        log.info("continuing from epoch %d of the source run", state.epoch)
    record = None
    for record in run.epochs(state):
        check_epoch(record, run, where or {}, lr_key)
        check_attacks(record, run, where or {})
        history.append(record.metrics)
        ckpt.save(record, history, snapshots)
        m = record.metrics
        loss = m["train_loss"]  # epoch 0 is the initialisation: no SGD step yet
        log.info(
            "epoch %d/%d: loss %s  train clean %.3f robust %.3f  "
            "test clean %.3f robust %.3f (last PGD iterate %.3f)  (%.1f s)",
            record.epoch,
            run.spec.epochs,
            "- (initialisation)" if record.epoch == 0 else f"{loss:.4f}",
            m["train_clean_acc"],
            m["train_robust_acc"],
            m["test_clean_acc"],
            m["test_robust_acc"],
            m["test_attacked_acc"],
            m["seconds"],
        )
    final = record.state if record is not None else state
    n_epochs = len(history)
    arrays: dict[str, np.ndarray] = {
        m: np.array([h[m] for h in history]) for m in METRICS
    }
    arrays["epoch"] = np.arange(n_epochs)
    arrays["kernel_labels"] = np.asarray(run.labels_train[: run.spec.kernel_batch])
    arrays |= {
        k: v for k, v in state_to_arrays(final).items() if k.startswith("params.")
    }
    for e in snapshots:
        if e < n_epochs:
            snap = h5io.read(ckpt.snapshot_path(e))
            arrays |= {f"snapshot.{e}.{k}": v for k, v in snap.items()}
    with h5io.atomic_h5(out_path, attrs) as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=value)
        if run.spec.kernel_batch > 0:
            first = h5io.read(ckpt.kernel_path(0))["kernel"]
            dset = f.create_dataset(
                "kernels",
                shape=(n_epochs, *first.shape),
                dtype=np.float32,
                chunks=(1, *first.shape),
            )
            for t in range(n_epochs):
                dset[t] = h5io.read(ckpt.kernel_path(t))["kernel"]
    ckpt.remove()
    log.info("wrote %s (%d epochs)", out_path, n_epochs)
