"""Standard, FGSM and PGD adversarial training with empirical-NTK tracking (Sec. 5).

Implements the training protocol of supp. App. E and E.1 (Tsilivis & Kempe, 2022):

* softmax cross-entropy, plain SGD (``optax.sgd``: no momentum, no weight decay),
  fixed batch order (no shuffling, no augmentation), ``PRNGKey(seed)`` init;
* adversarial examples from l_inf attacks written directly in jax: PGD with zero
  start, ``steps`` sign-gradient steps of size ``alpha``, each followed by the
  projection onto the eps-ball around the clean image *and* onto the box [0, 1];
  FGSM is the same attack with one step of size eps. (The authors' script ran the
  default 20 PGD steps for its "FGSM" run and clipped to [0, 1] only after the last
  step; see experiments.md Sec. 5 gotcha 1. Here FGSM really is one step.)
* every epoch 0..E: the empirical NTK of the network on a fixed batch (the first
  B training examples), clean and PGD accuracy on fixed evaluation subsets;
* optional linearisation (supp. E.1): after ``lin_epoch`` epochs the network is
  replaced by its first-order Taylor expansion in the parameters
  (``nt.linearize``) and PGD training continues on that linear model, with the
  attacks computed on the linear model as well.

Everything here is pure; the epoch loop is a generator (:meth:`DynamicsRun.epochs`)
so the rule script can checkpoint after every epoch and resume. With no random
start and a fixed batch order the whole run is a deterministic function of the
seed, so a resumed run reproduces an uninterrupted one bit for bit.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ntkadv.compat import import_neural_tangents
from ntkadv.dynamics import models
from ntkadv.dynamics.measures import kernel_matrix
from ntkadv.dynamics.state import EpochRecord, RunState, unflatten_tree
from ntkadv.dynamics.steps import (
    AttackSpec,
    correct_counts_fn,
    ntk_fn_for,
    pgd_attack_fn,
    train_step_fn,
)
from ntkadv.typing import ApplyFn, KernelInputs


def _jitted_functions(
    f: ApplyFn,
    optimizer: optax.GradientTransformation,
    train_attack: AttackSpec | None,
    eval_attack: AttackSpec,
    track_kernel: bool,
    ntk_implementation: str,
    ntk_block: int,
    linear: bool = False,
) -> dict[str, Callable]:
    """The jitted pieces of a run: logits, step, counts, eval_attack (and ntk).

    With ``linear=True`` every function takes the linearisation point theta_L as
    an extra first argument and works on ``nt.linearize(f, theta_L)``; theta_L is
    traced, so one compilation serves every linearisation point. The eNTK of the
    linear model is the eNTK of `f` at theta_L.
    """

    def pieces(g: ApplyFn) -> dict[str, Callable]:
        train = pgd_attack_fn(g, train_attack) if train_attack else None
        evaluate = pgd_attack_fn(g, eval_attack)
        return {
            "logits": g,
            "step": train_step_fn(g, optimizer, train),
            "counts": correct_counts_fn(g, eval_attack),
            "eval_attack": evaluate,
        }

    if not linear:
        fns = {name: jax.jit(fn) for name, fn in pieces(f).items()}
        if track_kernel:
            fns["ntk"] = ntk_fn_for(f, ntk_implementation, ntk_block)
        return fns

    def lifted(name: str) -> Callable:
        nt = import_neural_tangents()

        def fn(theta_l, *args):
            return pieces(nt.linearize(f, theta_l))[name](*args)

        return jax.jit(fn)

    fns = {name: lifted(name) for name in ("logits", "step", "counts", "eval_attack")}
    if track_kernel:
        base = ntk_fn_for(f, ntk_implementation, ntk_block)
        fns["ntk"] = lambda theta_l, x1, x2, params: base(x1, x2, theta_l)
    return fns


@functools.lru_cache(maxsize=8)
def _network_functions(
    model: str,
    num_classes: int,
    learning_rate: float,
    train_attack: AttackSpec | None,
    eval_attack: AttackSpec,
    track_kernel: bool,
    ntk_implementation: str,
    ntk_block: int,
    linear: bool,
) -> dict[str, Callable]:
    """:func:`_jitted_functions` of a network, shared by all runs with the same
    settings so that jax compiles them once per process."""
    f = models.apply_fn_for(models.build_model(model, num_classes))
    return _jitted_functions(
        f,
        optax.sgd(learning_rate),
        train_attack,
        eval_attack,
        track_kernel,
        ntk_implementation,
        ntk_block,
        linear,
    )


#: Modules whose code determines a training trajectory (see :func:`code_version`).
_TRAJECTORY_MODULES = ("training", "steps", "models", "entk", "state", "architectures")


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """SHA-256 of the source of the modules that determine a run, plus the jax,
    flax and optax versions: a checkpoint written by other code is not resumed."""
    from pathlib import Path

    import flax

    h = hashlib.sha256(
        f"{jax.__version__} {flax.__version__} {optax.__version__}".encode()
    )
    here = Path(__file__).parent
    for name in _TRAJECTORY_MODULES:
        h.update((here / f"{name}.py").read_bytes())
    return h.hexdigest()


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """Everything that determines one training run (and its checkpoint fingerprint).

    Not a settings type: a training job's settings are
    `ntkadv.dynamics.task.DynamicsSettings`, whose ``run_spec`` builds this spec
    (recorded as the run file's ``spec`` attrs, read back as ``run_spec``).

    Attributes:
        model: 'cnn' (MNIST) or 'cnn_mega' (CIFAR-10), see :mod:`ntkadv.models`.
        num_classes: network outputs k.
        seed: ``PRNGKey(seed)`` for the parameter initialisation.
        learning_rate: SGD step size (1e-2 in the paper).
        batch_size: SGD batch (300 MNIST, 250 CIFAR in the paper); the last
            incomplete batch of an epoch is dropped.
        epochs: E; epochs 0..E are recorded (0 = initialisation).
        train_attack: None for standard training, else the FGSM/PGD spec.
        eval_attack: PGD used for the per-epoch robust accuracies (PGD-20).
        kernel_batch: B, the eNTK is computed on the first B training examples;
            0 disables kernel tracking (linearised runs).
        kernel_inputs: 'clean' (default) or 'pgd': from epoch 1 on, the kernel is
            computed on the eval-PGD version of the batch, as the authors' code did.
        ntk_implementation: see :func:`ntk_fn_for`.
        ntk_block: tile size for the eNTK (0 = whole batch at once).
        eval_batch: chunk size of the evaluation loop.
        lin_epoch: None, or the epoch after which the model is linearised.
    """

    model: str
    num_classes: int
    seed: int
    learning_rate: float
    batch_size: int
    epochs: int
    train_attack: AttackSpec | None
    eval_attack: AttackSpec
    kernel_batch: int
    kernel_inputs: KernelInputs = "clean"
    ntk_implementation: str = "auto"
    ntk_block: int = 0
    eval_batch: int = 250
    lin_epoch: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (JSON-serialisable; recorded in HDF5 attrs)."""
        return dataclasses.asdict(self)

    def fingerprint(self, *arrays: np.ndarray) -> str:
        """SHA-256 of the spec, the code version and the data arrays (images and
        labels): identifies a resumable run."""
        h = hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode())
        h.update(code_version().encode())
        for a in arrays:
            a = np.ascontiguousarray(a)
            h.update(str((a.shape, a.dtype.str)).encode())
            h.update(a.tobytes())
        return h.hexdigest()


class DynamicsRun:
    """A training run of :class:`RunSpec` on fixed data, one epoch at a time.

    Args:
        spec: the run specification.
        x_train, labels_train: training images ``(n, H, W, C)`` in [0, 1] and int
            labels ``(n,)``, in training order (batch t = rows t*b..(t+1)*b-1).
        x_eval_train, labels_eval_train: subset for the per-epoch train accuracies.
        x_eval_test, labels_eval_test: subset for the per-epoch test accuracies.
    """

    def __init__(
        self,
        spec: RunSpec,
        x_train: np.ndarray,
        labels_train: np.ndarray,
        x_eval_train: np.ndarray,
        labels_eval_train: np.ndarray,
        x_eval_test: np.ndarray,
        labels_eval_test: np.ndarray,
    ):
        if spec.batch_size > len(x_train):
            raise ValueError(
                f"batch_size {spec.batch_size} > {len(x_train)} training examples"
            )
        if spec.kernel_batch > len(x_train):
            raise ValueError(
                f"kernel_batch {spec.kernel_batch} > {len(x_train)} training examples"
            )
        if spec.ntk_block and spec.kernel_batch % spec.ntk_block:
            raise ValueError(
                f"kernel_batch {spec.kernel_batch} is not a multiple of ntk_block "
                f"{spec.ntk_block} (nt.batch needs equal tiles)"
            )
        self.spec = spec
        self.model = models.build_model(spec.model, spec.num_classes)
        self.apply_fn = models.apply_fn_for(self.model)
        self.optimizer = optax.sgd(spec.learning_rate)
        self.x_train = jnp.asarray(x_train, dtype=jnp.float32)
        self.labels_train = jnp.asarray(labels_train, dtype=jnp.int32)
        self.eval_sets = {
            "train": (
                jnp.asarray(x_eval_train, dtype=jnp.float32),
                jnp.asarray(labels_eval_train, dtype=jnp.int32),
            ),
            "test": (
                jnp.asarray(x_eval_test, dtype=jnp.float32),
                jnp.asarray(labels_eval_test, dtype=jnp.int32),
            ),
        }
        self.steps_per_epoch = len(x_train) // spec.batch_size
        self._lin_fns: dict[str, Callable] = {}
        self._lin_key: Any = None

    # -------------------------------------------------------------- state
    def init_state(self) -> RunState:
        """Parameters drawn with ``PRNGKey(seed)``, fresh optimiser state."""
        params = models.init_params(
            self.model, jax.random.PRNGKey(self.spec.seed), self.x_train.shape[1:]
        )
        return RunState(epoch=0, params=params, opt_state=self.optimizer.init(params))

    def state_from_arrays(self, arrays: Mapping[str, np.ndarray]) -> RunState:
        """Inverse of :func:`state_to_arrays` (uses a fresh state as the template)."""
        template = self.init_state()
        has_lin = any(k.startswith("lin_params.") for k in arrays)
        return RunState(
            epoch=int(arrays["epoch"]),
            params=unflatten_tree(arrays, template.params, "params"),
            opt_state=unflatten_tree(arrays, template.opt_state, "opt_state"),
            lin_params=unflatten_tree(arrays, template.params, "lin_params")
            if has_lin
            else None,
        )

    # -------------------------------------------------------------- jitted pieces
    def _functions(self, state: RunState) -> dict[str, Callable]:
        """Jitted step/eval/kernel functions for the (possibly linearised) model."""
        spec = self.spec
        linear = state.lin_params is not None
        fns = _network_functions(
            spec.model,
            spec.num_classes,
            spec.learning_rate,
            spec.train_attack,
            spec.eval_attack,
            spec.kernel_batch > 0,
            spec.ntk_implementation,
            spec.ntk_block,
            linear,
        )
        if not linear:
            return fns
        if self._lin_key is not state.lin_params:  # bind theta_L once per point
            self._lin_fns = {
                k: functools.partial(fn, state.lin_params) for k, fn in fns.items()
            }
            self._lin_key = state.lin_params
        return self._lin_fns

    def _maybe_linearize(self, state: RunState) -> RunState:
        lin = self.spec.lin_epoch
        if lin is not None and state.lin_params is None and state.epoch >= lin:
            # Linear model f_lin(theta) = f(theta_L) + J(theta_L)(theta - theta_L),
            # trained from theta = theta_L with a fresh optimiser (as the authors).
            params = state.params
            return RunState(state.epoch, params, self.optimizer.init(params), params)
        return state

    def _evaluate(self, state: RunState, fns) -> dict[str, float]:
        out = {}
        for name, (x, labels) in self.eval_sets.items():
            clean = robust = last = 0
            for lo in range(0, len(x), self.spec.eval_batch):
                c, r, a = fns["counts"](
                    state.params,
                    x[lo : lo + self.spec.eval_batch],
                    labels[lo : lo + self.spec.eval_batch],
                )
                clean, robust, last = clean + int(c), robust + int(r), last + int(a)
            out[f"{name}_clean_acc"] = clean / len(x)
            out[f"{name}_robust_acc"] = robust / len(x)
            # plain accuracy at the last PGD iterate (not stored; checked per epoch)
            out[f"{name}_attacked_acc"] = last / len(x)
        return out

    def logits(self, state: RunState, x: jax.Array) -> np.ndarray:
        """Logits ``(n, k)`` of the current (possibly linearised) model on `x`."""
        return np.asarray(self._functions(state)["logits"](state.params, x))

    def branch_state(self, params: Any, epoch: int) -> RunState:
        """State after `epoch` epochs with parameters `params` and a fresh optimiser
        (a linearised run starting from its PGD run's snapshot; :meth:`epochs`
        linearises it at ``spec.lin_epoch``)."""
        params = jax.tree_util.tree_map(jnp.asarray, params)
        return RunState(epoch, params, self.optimizer.init(params))

    def kernel(self, state: RunState) -> np.ndarray:
        """The eNTK matrix ``(k B, k B)`` of the current model on the kernel batch.

        Ordering as the authors' ``.transpose([3, 1, 2, 0]).reshape(kB, kB)``, see
        :func:`ntkadv.dynamics.kernel_matrix`: row ``a*B + i`` is (output a, x_i).
        """
        fns = self._functions(state)
        b = self.spec.kernel_batch
        x, labels = self.x_train[:b], self.labels_train[:b]
        if self.spec.kernel_inputs == "pgd" and state.epoch > 0:
            x = fns["eval_attack"](state.params, x, labels)
        ntk = fns["ntk"](x, None, state.params)
        return np.asarray(kernel_matrix(np.asarray(ntk)), dtype=np.float32)

    def _record(self, state: RunState, loss: float, start: float) -> EpochRecord:
        fns = self._functions(state)
        metrics = {"train_loss": loss, **self._evaluate(state, fns)}
        kernel = self.kernel(state) if self.spec.kernel_batch > 0 else None
        metrics["seconds"] = time.perf_counter() - start
        return EpochRecord(state.epoch, metrics, kernel, state)

    def epochs(self, state: RunState | None = None) -> Iterator[EpochRecord]:
        """Yield one record per epoch, from `state` (fresh: epoch 0 = init) to E.

        A fresh run yields epochs 0..E; a run resumed from the state after epoch t
        yields t+1..E.
        """
        if state is None:
            start = time.perf_counter()
            state = self._maybe_linearize(self.init_state())
            yield self._record(state, float("nan"), start)
        b = self.spec.batch_size
        while state.epoch < self.spec.epochs:
            start = time.perf_counter()
            state = self._maybe_linearize(state)
            fns = self._functions(state)
            params, opt_state, losses = state.params, state.opt_state, []
            for t in range(self.steps_per_epoch):
                params, opt_state, loss = fns["step"](
                    params,
                    opt_state,
                    self.x_train[t * b : (t + 1) * b],
                    self.labels_train[t * b : (t + 1) * b],
                )
                losses.append(loss)
            state = RunState(state.epoch + 1, params, opt_state, state.lin_params)
            state = self._maybe_linearize(state)
            yield self._record(state, float(np.mean(losses)), start)


def prefix_subsets(
    data: Mapping[str, np.ndarray],
    n_train: int | None,
    n_eval_train: int | None,
    n_eval_test: int | None,
) -> dict[str, np.ndarray]:
    """The first n rows of the prepared data (None = all), in file order.

    Returns:
        ``x_train, labels_train`` (SGD set, training order), ``x_eval_train,
        labels_eval_train`` (prefix of the SGD set) and ``x_eval_test,
        labels_eval_test``.

    Raises:
        ValueError: a requested size exceeds what the data file holds.
    """
    sizes = {
        "train": (n_train, data["x_train"]),
        "eval_test": (n_eval_test, data["x_test"]),
    }
    for name, (n, x) in sizes.items():
        if n is not None and n > len(x):
            raise ValueError(
                f"dynamics asks for {n} {name} examples; the data file has {len(x)} "
                "(raise datasets.<name>.n_train / n_test)"
            )
    n = len(data["x_train"]) if n_train is None else n_train
    m = n if n_eval_train is None else min(n_eval_train, n)
    t = len(data["x_test"]) if n_eval_test is None else n_eval_test
    return {
        "x_train": data["x_train"][:n],
        "labels_train": data["labels_train"][:n],
        "x_eval_train": data["x_train"][:m],
        "labels_eval_train": data["labels_train"][:m],
        "x_eval_test": data["x_test"][:t],
        "labels_eval_test": data["labels_test"][:t],
    }
