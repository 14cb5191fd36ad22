"""Checkpointed execution of a training run (rules train_*_network).

After every epoch the run's state goes to ``<ckpt>/state.h5`` (parameters, optimiser
state, linearisation point, completed epoch, metric history; written atomically) and
the epoch's eNTK to ``<ckpt>/kernel_<epoch>.h5`` (written atomically, *before* the
state that refers to it). A job killed at any point restarts from the last complete
epoch; because training is deterministic the result equals an uninterrupted run. The
checkpoint is used only if its fingerprint (run spec + data) matches, and it is
removed once the final ``run.h5`` has been written.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ntkadv import h5io
from ntkadv.dynamics.records import METRICS
from ntkadv.dynamics.state import state_to_arrays

if TYPE_CHECKING:
    from ntkadv.dynamics.state import EpochRecord
    from ntkadv.dynamics.training import DynamicsRun


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

    def load(self, run: DynamicsRun):
        """``(state, history)`` of the last complete epoch, or ``(None, [])``."""
        if not self.state_path.exists():
            return None, []
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
        tracked = run.spec.kernel_batch > 0
        if tracked and not all(
            self.kernel_path(t).exists() for t in range(state.epoch + 1)
        ):
            self.log.warning("checkpoint %s misses kernels; ignored", self.dir)
            return None, []
        self.log.info("resuming from the checkpoint after epoch %d", state.epoch)
        return state, history

    def save(self, record: EpochRecord, history: list[dict[str, float]]) -> None:
        """Write the epoch's kernel, then the state that completes it."""
        if record.kernel is not None:
            h5io.write(self.kernel_path(record.epoch), {"kernel": record.kernel})
        arrays = state_to_arrays(record.state)
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
) -> None:
    """Train (resuming if possible) and write ``run.h5``; see the module docstring.

    ``run.h5`` holds ``kernels`` ``(E+1, kB, kB)`` float32 (one chunk per epoch; only
    when kernels are tracked), one ``(E+1,)`` array per metric, ``epoch``,
    ``kernel_labels`` ``(B,)`` and the final parameters ``params.<path>``.
    """
    ckpt = Checkpoint(ckpt_dir, fingerprint, log)
    state, history = ckpt.load(run)
    record = None
    for record in run.epochs(state):
        history.append(record.metrics)
        ckpt.save(record, history)
        m = record.metrics
        log.info(
            "epoch %d/%d: loss %.4f  train clean %.3f robust %.3f  "
            "test clean %.3f robust %.3f  (%.1f s)",
            record.epoch,
            run.spec.epochs,
            m["train_loss"],
            m["train_clean_acc"],
            m["train_robust_acc"],
            m["test_clean_acc"],
            m["test_robust_acc"],
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
