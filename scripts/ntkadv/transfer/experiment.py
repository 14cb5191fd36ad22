"""The transfer experiment: train one wide net, compare it with f_t (supp. App. C)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ntkadv.attacks.checks import check_attack_accuracy
from ntkadv.attacks.closed_form import fgsm_step, perturb
from ntkadv.claims.nulls import mismatched
from ntkadv.losses import class_labels, predictions_correct
from ntkadv.transfer.checks import check_descent, check_finite
from ntkadv.transfer.net import (
    GDProblem,
    TwoLayerNet,
    coordinates,
    cosine_similarity,
    dual_gram,
    gd_dual_run_fn,
    gd_problem,
    gd_run_fn,
    ntk_time,
    outputs_and_loss_gradient,
    outputs_fn_t,
    reduced_loss,
    row_space_basis,
)
from ntkadv.transfer.records import METRICS, POINT_ARRAYS
from ntkadv.typing import Task


def eval_epochs(max_epoch: int, n_eval: int, extra: Sequence[int] = ()) -> np.ndarray:
    """Log-spaced integer evaluation epochs in [1, max_epoch] plus `extra` (sorted)."""
    grid = np.unique(np.round(np.logspace(0, np.log10(max_epoch), n_eval)).astype(int))
    extra = [int(e) for e in extra if 1 <= int(e) <= max_epoch]
    return np.unique(np.concatenate([grid, np.asarray(extra, dtype=int)]))


def transfer_epochs(
    epochs: int, n_eval: int, image_epochs: Sequence[int], align_epoch: int
) -> np.ndarray:
    """Evaluation epochs of the transfer runs.

    `n_eval` log-spaced epochs in [1, `epochs`] plus the `image_epochs` and the
    `align_epoch` (those within range).
    """
    return eval_epochs(epochs, n_eval, [*image_epochs, align_epoch])


def nearest_epoch(epochs: Sequence[int], target: int) -> int:
    """The evaluation epoch closest to `target` on a log scale."""
    epochs = np.asarray(epochs)
    return int(epochs[np.argmin(np.abs(np.log(epochs) - np.log(max(target, 1))))])


def same_class_partners(labels: np.ndarray) -> np.ndarray:
    """Partner j ≠ i of each point with the same label: the next point of its class.

    Within each class (points in index order) the partner is `nulls.mismatched`
    (i -> i + 1 mod the class size); a point alone in its class gets -1 (no partner).

    Args:
        labels: (b,) class indices.

    Returns:
        (b,) int64 partner indices (-1: none).
    """
    labels = np.asarray(labels)
    out = np.full(labels.shape[0], -1, dtype=np.int64)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if idx.size >= 2:
            out[idx] = idx[mismatched(idx.size)]
    return out


def partner_cosine(
    grad_ntk: np.ndarray, grad_net: np.ndarray, partners: np.ndarray
) -> np.ndarray:
    """cos(grad_ntk[i], grad_net[partners[i]]) (b,); NaN where partners[i] < 0."""
    ok = partners >= 0
    out = np.full(partners.shape[0], np.nan)
    out[ok] = cosine_similarity(grad_ntk[ok], grad_net[partners[ok]])
    return out


def run_transfer(
    net: TwoLayerNet,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    task: Task,
    lr: float,
    reference: Mapping[str, np.ndarray],
    eps: float,
    image_index: int | None = None,
    image_epochs: Sequence[int] = (),
    log: Callable[[str], None] | None = None,
    dataset: str = "?",
    at: str = "",
) -> dict[str, np.ndarray]:
    """Train the net by full-batch GD; compare it with f_t at the reference's epochs.

    At each evaluation epoch τ of `reference` (NTK time t = τ / n), per test point i:

    * cosine_per_point: cos(∇ₓL(f_t, y)_i, ∇ₓL(f − f_0, y)_i) (supp. Eq. 30); the NTK
      gradient from `reference`, the net's by autodiff;
    * cosine_mismatched_per_point: the same with the net's gradient of point
      j = `nulls.mismatched(b)[i]` (i + 1 mod b): the cosine of unrelated gradients;
    * cosine_same_class_per_point: the same with the next test point of the same
      class (`same_class_partners`; NaN for a point alone in its class): loss
      gradients share a class-dependent direction (on binary CIFAR the cosine of
      two different airplanes is ~0.9), which this control keeps and the same-point
      cosine must exceed;
    * correct_clean / correct_own / correct_ntk / correct_random: f − f_0 correct on
      the clean point, and correct clean AND on its own FGSM example, on the NTK's
      FGSM example, on the random-sign perturbation ``reference["random_signs"]``
      (all ℓ∞ `eps`, clipped to [0, 1]).

    Per epoch (the `METRICS`): the means of those (acc_*, cosine,
    cosine_mismatched, cosine_same_class; NaN cosines are skipped),
    rel_output_error ‖(f − f_0) − f_t‖_F / ‖f_t‖_F on the test points, train_loss
    (mean squared loss of f) and weight_change ‖W − W_0‖_F / ‖W_0‖_F.

    Every evaluation checks that loss, parameters, predictions and gradients are
    finite and that the loss stays below `checks.LOSS_GROWTH` × its initial value;
    a violation raises `checks.DivergenceError` naming `at`, the epoch and the lr key.
    The plain accuracy on the net's own FGSM examples must not exceed its clean
    accuracy (`ntkadv.attacks.checks.check_attack_accuracy`, `AttackCheckError`).

    Args:
        net: initial network (w0 (m, d), a (m, k)).
        x_train: (n, d) flattened training inputs.
        y_train: (n, k) targets.
        x_test: (b, d) flattened test inputs.
        y_test: (b, k) test targets.
        task: "binary" or "multiclass".
        lr: learning rate (the reference's).
        reference: `ntk_transfer_reference` output (epoch, loss_grad, f,
            random_signs).
        eps: ℓ∞ budget.
        image_index: test point whose gradient images are kept (None: none).
        image_epochs: epochs (among the reference's) at which they are kept.
        log: optional progress callback.
        dataset: dataset name (for the lr key in error messages).
        at: the run in error messages ("dataset mnist, width 1000, seed 0").

    Returns:
        The `METRICS` arrays (E,), the `POINT_ARRAYS` (E, b), "f0_test" (b, k),
        "f_test" (E, b, k) (f − f_0); with `image_index`, "grad_image" (I, d).
    """
    at = at or f"dataset {dataset}, width {net.w0.shape[0]}"
    ev = _Evaluator.build(
        net, x_train, y_train, x_test, y_test, task, lr, reference, eps, dataset
    )
    state, advance, to_c = gd_loop(ev.problem, lr, net.w0.dtype)
    c = to_c(state)
    loss0 = float(ev.train_loss(c, *ev.problem))
    check_finite({"initial loss": loss0}, lr, dataset, f"{at}, epoch 0")
    keep = {int(e) for e in image_epochs}
    out: dict[str, list] = {key: [] for key in (*METRICS, *POINT_ARRAYS)}
    out.update(f_test=[], grad_image=[])
    done = 0
    for i, epoch in enumerate(int(e) for e in reference["epoch"]):
        state = advance(state, epoch - done)
        c = to_c(state)
        done = epoch
        values, points, f_net, grad_net = ev.evaluate(
            c, i, epoch, loss0, f"{at}, epoch {epoch}"
        )
        for key, value in (values | points).items():
            out[key].append(value)
        out["f_test"].append(f_net)
        if image_index is not None and epoch in keep:
            out["grad_image"].append(grad_net[image_index])
        if log is not None:
            log(_epoch_line(epoch, values))
    return ev.result(out, image_index)


def gd_loop(
    problem: GDProblem, lr: float, dtype: Any
) -> tuple[jax.Array, Callable[[jax.Array, int], jax.Array], Callable]:
    """The cheaper exact full-batch GD loop of `problem`: (state_0, advance, to_c).

    With n training points and row-space rank r, GD in dual coordinates
    (`net.gd_dual_run_fn`, state α (n, m), 2 n² m flops per epoch) when n <= 2 r
    (the laptop scale: r = n), else in row-space coordinates (`net.gd_run_fn`,
    state C (m, r), 4 n r m flops; e.g. 10⁴ MNIST points, r <= 784). Both are the
    same GD on W; the state is donated to each interval's compiled loop.

    Returns:
        The zero state, ``advance(state, steps)`` (`steps` epochs, one compiled
        function for every interval) and ``to_c(state)``, the coordinates C (m, r).
    """
    n, r = problem.p.shape
    m = problem.z0.shape[1]
    if n <= 2 * r:
        run = jax.jit(gd_dual_run_fn(lr), donate_argnums=0)
        gram = dual_gram(problem)
        to_c = jax.jit(coordinates)
        return (
            jnp.zeros((n, m), dtype),
            lambda alpha, steps: run(alpha, problem, gram, steps),
            lambda alpha: to_c(alpha, problem),
        )
    run = jax.jit(gd_run_fn(lr), donate_argnums=0)
    return (
        jnp.zeros((m, r), dtype),
        lambda c, steps: run(c, problem, steps),
        lambda c: c,
    )


@dataclasses.dataclass
class _Evaluator:
    """The compiled functions and fixed arrays of one run's evaluations (the
    arguments of `run_transfer`, the test inputs as float64 NumPy and as jax arrays
    of the net's dtype; the net and the basis are arguments, not constants, of the
    compiled functions)."""

    net: TwoLayerNet
    task: Task
    lr: float
    eps: float
    dataset: str
    reference: Mapping[str, np.ndarray]
    n_train: int
    basis: jax.Array
    w0t: jax.Array
    problem: tuple
    clean_fn: Callable
    outputs_fn: Callable
    train_loss: Callable
    x_test: np.ndarray
    y_test: np.ndarray
    xt: jax.Array
    yt: jax.Array
    z0_test: jax.Array
    x_random: np.ndarray
    xr: jax.Array
    z0_random: jax.Array
    other: np.ndarray
    same_class: np.ndarray
    w0_norm: float
    dtype: Any

    @classmethod
    def build(
        cls, net, x_train, y_train, x_test, y_test, task, lr, reference, eps, dataset
    ) -> _Evaluator:
        """Row-space basis, GD problem, compiled evaluations and the fixed controls
        (with the initial pre-activations x W_0ᵀ of the fixed inputs: the test
        points and their random-sign perturbations)."""
        dtype = net.w0.dtype
        basis = jnp.asarray(row_space_basis(x_train))
        w0t = jnp.asarray(np.ascontiguousarray(np.asarray(net.w0).T))
        x_test = np.asarray(x_test, dtype=np.float64)
        x_random = perturb(x_test, reference["random_signs"], eps)
        xt, xr = jnp.asarray(x_test, dtype), jnp.asarray(x_random, dtype)
        pre = jax.jit(jnp.matmul)
        return cls(
            net=net,
            task=task,
            lr=lr,
            eps=eps,
            dataset=dataset,
            reference=reference,
            n_train=x_train.shape[0],
            basis=basis,
            w0t=w0t,
            problem=gd_problem(net, basis, x_train, y_train, w0t),
            clean_fn=jax.jit(outputs_and_loss_gradient, static_argnames="task"),
            outputs_fn=jax.jit(outputs_fn_t),
            train_loss=jax.jit(reduced_loss),
            x_test=x_test,
            y_test=y_test,
            xt=xt,
            yt=jnp.asarray(y_test, dtype),
            z0_test=pre(xt, w0t),
            x_random=x_random,
            xr=xr,
            z0_random=pre(xr, w0t),
            other=mismatched(x_test.shape[0]),
            same_class=same_class_partners(class_labels(y_test, task)),
            w0_norm=float(jnp.linalg.norm(net.w0)),
            dtype=dtype,
        )

    def evaluate(
        self, c: jax.Array, i: int, epoch: int, loss0: float, here: str
    ) -> tuple[dict, dict, np.ndarray, np.ndarray]:
        """The net W0 + c·basisᵀ at the reference's i-th epoch: (the `METRICS`
        values, the `POINT_ARRAYS` (b,), f − f_0 (b, k), loss gradients (b, d))."""
        loss_now, f_net, grad_net = self._outputs(c, loss0, here)
        grad_ntk = np.asarray(self.reference["loss_grad"][i], dtype=np.float64)
        f_ntk = np.asarray(self.reference["f"][i], dtype=np.float64)
        clean, own, ntk, rand = self._robust(c, f_net, grad_net, grad_ntk, here)
        cos = cosine_similarity(grad_ntk, grad_net)
        cos_other = cosine_similarity(grad_ntk, grad_net[self.other])
        cos_class = partner_cosine(grad_ntk, grad_net, self.same_class)
        points = {
            "cosine_per_point": cos,
            "cosine_mismatched_per_point": cos_other,
            "cosine_same_class_per_point": cos_class,
            "correct_clean": clean,
            "correct_own": own,
            "correct_ntk": ntk,
            "correct_random": rand,
        }
        values = {
            "epoch": epoch,
            "t": ntk_time(epoch, self.n_train),
            "cosine": _nanmean(cos),
            "cosine_mismatched": _nanmean(cos_other),
            "cosine_same_class": _nanmean(cos_class),
            "acc_clean": float(clean.mean()),
            "acc_own": float(own.mean()),
            "acc_ntk": float(ntk.mean()),
            "acc_random": float(rand.mean()),
            "rel_output_error": float(
                np.linalg.norm(f_net - f_ntk)
                / max(float(np.linalg.norm(f_ntk)), np.finfo(np.float64).tiny)
            ),
            "train_loss": loss_now,
            "weight_change": float(jnp.linalg.norm(c)) / self.w0_norm,
        }
        return values, points, f_net, grad_net

    def _outputs(
        self, c: jax.Array, loss0: float, here: str
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """Training loss, test predictions f − f_0 and loss input gradients, checked
        finite and for descent (`checks.DivergenceError`)."""
        loss_now = float(self.train_loss(c, *self.problem))
        f_net, grad_net = (
            np.asarray(v, dtype=np.float64)
            for v in self.clean_fn(
                self.net,
                self.w0t,
                self.basis,
                c,
                self.xt,
                self.yt,
                task=self.task,
                z0=self.z0_test,
            )
        )
        check_finite(
            {
                "training loss": loss_now,
                "parameters W - W0": c,
                "test predictions": f_net,
                "loss gradients": grad_net,
            },
            self.lr,
            self.dataset,
            here,
        )
        check_descent(loss_now, loss0, self.lr, self.dataset, here)
        return loss_now, f_net, grad_net

    def _robust(
        self,
        c: jax.Array,
        f_net: np.ndarray,
        grad_net: np.ndarray,
        grad_ntk: np.ndarray,
        here: str,
    ) -> tuple[np.ndarray, ...]:
        """(b,) correct clean, and correct clean AND on the net's own FGSM example,
        on the NTK's FGSM example, on the random-sign perturbation."""
        x_test, y_test, b = self.x_test, self.y_test, self.x_test.shape[0]
        x_adv = np.concatenate(
            [
                fgsm_step(x_test, grad_net, self.eps),
                fgsm_step(x_test, grad_ntk, self.eps),
            ]
        )
        w0t, a, basis = self.w0t, self.net.a, self.basis
        f_adv = np.concatenate(
            [
                np.asarray(
                    self.outputs_fn(w0t, a, basis, c, jnp.asarray(x_adv, self.dtype)),
                    dtype=np.float64,
                ),
                np.asarray(
                    self.outputs_fn(w0t, a, basis, c, self.xr, self.z0_random),
                    dtype=np.float64,
                ),
            ]
        )
        clean = predictions_correct(f_net, y_test, self.task)
        attacked = [
            predictions_correct(f_adv[j * b : (j + 1) * b], y_test, self.task)
            for j in range(3)
        ]
        # the net's FGSM on its own loss gradient must not raise its accuracy
        check_attack_accuracy(
            float(clean.mean()), float(attacked[0].mean()), b, "FGSM (own)", here
        )
        own, ntk, rand = (clean & ok for ok in attacked)
        return clean, own, ntk, rand

    def result(
        self, out: dict[str, list], image_index: int | None
    ) -> dict[str, np.ndarray]:
        """The run's arrays from the per-epoch lists, with f_0 at the test points."""
        result = {
            key: np.asarray(value) for key, value in out.items() if key != "grad_image"
        }
        a = self.net.a
        # f_0 = `apply` of the initial net, in the fast (w0ᵀ) layout
        f0 = jax.nn.relu(self.z0_test) @ a / np.sqrt(a.shape[0])
        result["f0_test"] = np.asarray(f0, dtype=np.float64)
        if image_index is not None:
            result["grad_image"] = np.asarray(out["grad_image"]).reshape(
                -1, self.x_test.shape[1]
            )
        return result


def _epoch_line(epoch: int, values: Mapping[str, float]) -> str:
    """The progress line of one evaluation epoch."""
    return (
        f"epoch {epoch}: cos {values['cosine']:.3f} (mismatched "
        f"{values['cosine_mismatched']:.3f}, same class "
        f"{values['cosine_same_class']:.3f}) acc clean/own/ntk/random "
        f"{values['acc_clean']:.2f}/{values['acc_own']:.2f}/"
        f"{values['acc_ntk']:.2f}/{values['acc_random']:.2f} loss "
        f"{values['train_loss']:.4g} |W-W0|/|W0| {values['weight_change']:.3g}"
    )


def _nanmean(values: np.ndarray) -> float:
    """Mean over the finite entries (NaN if there are none), without a warning."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    return float(values[finite].mean()) if finite.any() else float("nan")
