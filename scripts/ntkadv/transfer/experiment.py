"""The transfer experiment: train one wide net, compare it with f_t (supp. App. C)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ntkadv.attacks.closed_form import fgsm_step
from ntkadv.losses import accuracy
from ntkadv.transfer.net import (
    TwoLayerNet,
    apply,
    cosine_similarity,
    difference_fn,
    gd_problem,
    gd_run_fn,
    loss_input_gradient_fn,
    ntk_time,
    reduced_loss,
    row_space_basis,
)
from ntkadv.transfer.records import METRICS
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
) -> dict[str, np.ndarray]:
    """Train the net by full-batch GD; compare it with f_t at the reference's epochs.

    At each evaluation epoch τ of `reference` (NTK time t = τ / n):

    * cosine: mean over test points of cos(∇ₓL(f_t, y), ∇ₓL(f − f_0, y)) (supp.
      Eq. 30); the NTK gradient from `reference`, the net's by autodiff;
    * acc_clean / acc_own / acc_ntk: accuracy of f − f_0 on the clean test points,
      on its own FGSM examples and on the NTK's FGSM examples (ℓ∞, `eps`);
    * rel_output_error: ‖(f − f_0) − f_t‖_F / ‖f_t‖_F on the test points;
    * train_loss: mean squared training loss of f; weight_change: ‖W − W_0‖_F / ‖W_0‖_F.

    Args:
        net: initial network (w0 (m, d), a (m, k)).
        x_train: (n, d) flattened training inputs.
        y_train: (n, k) targets.
        x_test: (b, d) flattened test inputs.
        y_test: (b, k) test targets.
        task: "binary" or "multiclass".
        lr: learning rate (the reference's).
        reference: `ntk_transfer_reference` output (epoch, loss_grad, f).
        eps: ℓ∞ budget.
        image_index: test point whose gradient images are kept (None: none).
        image_epochs: epochs (among the reference's) at which they are kept.
        log: optional progress callback.

    Returns:
        The `METRICS` arrays (E,), "cosine_per_point" (E, b), "f0_test" (b, k),
        "f_test" (E, b, k) (f − f_0); with `image_index`, "grad_image" (I, d).
    """
    dtype = net.w0.dtype
    basis = jnp.asarray(row_space_basis(x_train))
    problem = gd_problem(net, basis, x_train, y_train)
    run = jax.jit(gd_run_fn(lr))
    g = jax.jit(difference_fn(net, basis))
    loss_grad = jax.jit(loss_input_gradient_fn(net, basis, task))
    train_loss = jax.jit(reduced_loss)
    x_test = np.asarray(x_test, dtype=np.float64)
    xt, yt = jnp.asarray(x_test, dtype), jnp.asarray(y_test, dtype)
    w0_norm = float(jnp.linalg.norm(net.w0))
    c = jnp.zeros((net.w0.shape[0], basis.shape[1]), dtype)
    keep = {int(e) for e in image_epochs}
    out: dict[str, list] = {key: [] for key in METRICS}
    out.update(cosine_per_point=[], f_test=[], grad_image=[])
    done = 0
    for i, epoch in enumerate(int(e) for e in reference["epoch"]):
        c = run(c, problem, epoch - done)
        done = epoch
        f_net = np.asarray(g(c, xt), dtype=np.float64)
        grad_net = np.asarray(loss_grad(c, xt, yt), dtype=np.float64)
        grad_ntk = np.asarray(reference["loss_grad"][i], dtype=np.float64)
        f_ntk = np.asarray(reference["f"][i], dtype=np.float64)
        x_own = jnp.asarray(fgsm_step(x_test, grad_net, eps), dtype)
        x_ntk = jnp.asarray(fgsm_step(x_test, grad_ntk, eps), dtype)
        cos = cosine_similarity(grad_ntk, grad_net)
        values = {
            "epoch": epoch,
            "t": ntk_time(epoch, x_train.shape[0]),
            "cosine": float(np.nanmean(cos)),
            "acc_clean": accuracy(f_net, y_test, task),
            "acc_own": accuracy(np.asarray(g(c, x_own)), y_test, task),
            "acc_ntk": accuracy(np.asarray(g(c, x_ntk)), y_test, task),
            "rel_output_error": float(
                np.linalg.norm(f_net - f_ntk)
                / max(float(np.linalg.norm(f_ntk)), np.finfo(np.float64).tiny)
            ),
            "train_loss": float(train_loss(c, *problem)),
            "weight_change": float(jnp.linalg.norm(c)) / w0_norm,
        }
        for key, value in values.items():
            out[key].append(value)
        out["cosine_per_point"].append(cos)
        out["f_test"].append(f_net)
        if image_index is not None and epoch in keep:
            out["grad_image"].append(grad_net[image_index])
        if log is not None:
            log(
                f"epoch {epoch}: cos {values['cosine']:.3f} acc clean/own/ntk "
                f"{values['acc_clean']:.2f}/{values['acc_own']:.2f}/"
                f"{values['acc_ntk']:.2f} loss {values['train_loss']:.4g} "
                f"|W-W0|/|W0| {values['weight_change']:.3g}"
            )
    result = {
        key: np.asarray(value) for key, value in out.items() if key != "grad_image"
    }
    result["f0_test"] = np.asarray(apply(net.w0, net.a, xt), dtype=np.float64)
    if image_index is not None:
        result["grad_image"] = np.asarray(out["grad_image"]).reshape(
            -1, x_test.shape[1]
        )
    return result
