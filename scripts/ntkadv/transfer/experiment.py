"""The transfer experiment: train one wide net, compare it with f_t (supp. App. C)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ntkadv.attacks.checks import check_attack_accuracy
from ntkadv.attacks.closed_form import fgsm_step, perturb
from ntkadv.claims.nulls import mismatched
from ntkadv.losses import predictions_correct
from ntkadv.transfer.checks import check_descent, check_finite
from ntkadv.transfer.net import (
    TwoLayerNet,
    cosine_similarity,
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


def class_labels(y: np.ndarray, task: Task) -> np.ndarray:
    """Class index (b,) of targets y (b, k): ±1 -> 0/1 (binary) or the argmax."""
    y = np.asarray(y)
    return (y[:, 0] > 0).astype(np.int64) if task == "binary" else y.argmax(axis=1)


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
    dtype = net.w0.dtype
    at = at or f"dataset {dataset}, width {net.w0.shape[0]}"
    basis = jnp.asarray(row_space_basis(x_train))
    run = jax.jit(gd_run_fn(lr))
    # the net and the basis are arguments (not constants) of the compiled functions
    clean_fn = jax.jit(outputs_and_loss_gradient, static_argnames="task")
    outputs_fn = jax.jit(outputs_fn_t)
    w0t = jnp.asarray(np.ascontiguousarray(np.asarray(net.w0).T))
    problem = gd_problem(net, basis, x_train, y_train, w0t)
    train_loss = jax.jit(reduced_loss)
    x_test = np.asarray(x_test, dtype=np.float64)
    b = x_test.shape[0]
    xt, yt = jnp.asarray(x_test, dtype), jnp.asarray(y_test, dtype)
    x_random = perturb(x_test, reference["random_signs"], eps)
    other = mismatched(b)
    same_class = same_class_partners(class_labels(y_test, task))
    w0_norm = float(jnp.linalg.norm(net.w0))
    c = jnp.zeros((net.w0.shape[0], basis.shape[1]), dtype)
    loss0 = float(train_loss(c, *problem))
    check_finite({"initial loss": loss0}, lr, dataset, f"{at}, epoch 0")
    keep = {int(e) for e in image_epochs}
    out: dict[str, list] = {key: [] for key in (*METRICS, *POINT_ARRAYS)}
    out.update(f_test=[], grad_image=[])
    done = 0
    for i, epoch in enumerate(int(e) for e in reference["epoch"]):
        c = run(c, problem, epoch - done)
        done = epoch
        here = f"{at}, epoch {epoch}"
        loss_now = float(train_loss(c, *problem))
        f_net, grad_net = (
            np.asarray(v, dtype=np.float64)
            for v in clean_fn(net, w0t, basis, c, xt, yt, task=task)
        )
        check_finite(
            {
                "training loss": loss_now,
                "parameters W - W0": c,
                "test predictions": f_net,
                "loss gradients": grad_net,
            },
            lr,
            dataset,
            here,
        )
        check_descent(loss_now, loss0, lr, dataset, here)
        grad_ntk = np.asarray(reference["loss_grad"][i], dtype=np.float64)
        f_ntk = np.asarray(reference["f"][i], dtype=np.float64)
        x_adv = np.concatenate(
            [
                fgsm_step(x_test, grad_net, eps),
                fgsm_step(x_test, grad_ntk, eps),
                x_random,
            ]
        )
        f_adv = np.asarray(
            outputs_fn(w0t, net.a, basis, c, jnp.asarray(x_adv, dtype)),
            dtype=np.float64,
        )
        clean = predictions_correct(f_net, y_test, task)
        attacked = [
            predictions_correct(f_adv[j * b : (j + 1) * b], y_test, task)
            for j in range(3)
        ]
        # the net's FGSM on its own loss gradient must not raise its accuracy
        check_attack_accuracy(
            float(clean.mean()), float(attacked[0].mean()), b, "FGSM (own)", here
        )
        own, ntk, rand = (clean & ok for ok in attacked)
        cos = cosine_similarity(grad_ntk, grad_net)
        cos_other = cosine_similarity(grad_ntk, grad_net[other])
        cos_class = partner_cosine(grad_ntk, grad_net, same_class)
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
            "t": ntk_time(epoch, x_train.shape[0]),
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
            "weight_change": float(jnp.linalg.norm(c)) / w0_norm,
        }
        for key, value in (values | points).items():
            out[key].append(value)
        out["f_test"].append(f_net)
        if image_index is not None and epoch in keep:
            out["grad_image"].append(grad_net[image_index])
        if log is not None:
            log(
                f"epoch {epoch}: cos {values['cosine']:.3f} (mismatched "
                f"{values['cosine_mismatched']:.3f}, same class "
                f"{values['cosine_same_class']:.3f}) acc clean/own/ntk/random "
                f"{values['acc_clean']:.2f}/{values['acc_own']:.2f}/"
                f"{values['acc_ntk']:.2f}/{values['acc_random']:.2f} loss "
                f"{values['train_loss']:.4g} |W-W0|/|W0| {values['weight_change']:.3g}"
            )
    result = {
        key: np.asarray(value) for key, value in out.items() if key != "grad_image"
    }
    f0 = jax.nn.relu(xt @ w0t) @ net.a / np.sqrt(net.a.shape[0])  # `apply`, fast layout
    result["f0_test"] = np.asarray(f0, dtype=np.float64)
    if image_index is not None:
        result["grad_image"] = np.asarray(out["grad_image"]).reshape(
            -1, x_test.shape[1]
        )
    return result


def _nanmean(values: np.ndarray) -> float:
    """Mean over the finite entries (NaN if there are none), without a warning."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    return float(values[finite].mean()) if finite.any() else float("nan")
