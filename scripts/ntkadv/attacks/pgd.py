"""PGD-k on the NTK predictor f_t with gradients through `kernel_fn` (supp. App. B).

k sign-gradient steps of size `step` on the cross-entropy loss of f_t, projected to
the ε-ball and the box [0, 1]^d after every step, no random start (the authors'
notebook). Gradients at perturbed points go through a jax VJP of `kernel_fn`; for a
binary task with the CONV kernel, PGD's steps take f and ∇ₓf of each row in one
pass instead (`rows_loss_gradient_fn`, `ntkadv.kernels.rows`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from ntkadv.attacks.closed_form import project
from ntkadv.kernels.rows import prefers_one_pass, weighted_rows_value_and_grad_fn
from ntkadv.losses import loss
from ntkadv.typing import KernelFn, Task


def loss_gradient_fn(kernel_fn: KernelFn, task: Task) -> Callable:
    """Pure (x, y, x_train, c) -> ∇ₓ Σ_i L(f_t(x_i), y_i) (shape of x), by VJP.

    The per-example losses are independent, so the gradient of the sum is the stack of
    per-example gradients. Jit the result (the caller's job).
    """

    def total(x, y, x_train, c):
        return jnp.sum(loss(kernel_fn(x, x_train) @ c, y, task))

    return jax.grad(total)


def pgd(
    kernel_fn: KernelFn,
    x,
    x_train,
    c,
    y,
    task: Task,
    eps: float,
    step: float,
    steps: int,
    block_size: int | None = None,
    init_grad=None,
    grad_fn: Callable | None = None,
):
    """PGD-`steps` ℓ∞ attack on f_t with gradients through `kernel_fn` (VJP).

    x_{s+1} = Π_{‖·−x0‖∞<=ε, [0,1]}(x_s + step·sign(∇ₓL(f_t(x_s), y))), x_0 = x, no
    random start (the authors' notebook). Test points are processed in blocks of
    `block_size`.

    Args:
        kernel_fn: analytic NTK, kernel_fn(x1 (a, *shape), x2 (b, *shape)) -> (a, b).
        x: (m, d) flattened or (m, *shape) clean inputs in [0, 1].
        x_train: (n, *shape) training inputs.
        c: (n, k) predictor coefficients (`ntkadv.predictor.coefficients`).
        y: (m, k) targets.
        task: "binary" or "multiclass".
        eps: ℓ∞ budget.
        step: step size.
        steps: number of steps (0 returns x).
        block_size: test points per gradient evaluation (default: all).
        init_grad: optional (m, d) loss gradient at the clean x (e.g. from the Jacobian
            cache), which saves the first VJP.
        grad_fn: optional jitted `loss_gradient_fn(kernel_fn, task)` to reuse.

    Returns:
        x_adv with the shape and dtype of x.
    """
    x_in = np.asarray(x)
    shape = (x_in.shape[0],) + tuple(np.shape(x_train)[1:])
    x0 = jnp.asarray(x_in.reshape(shape))
    x_train = jnp.asarray(x_train)
    c, y = jnp.asarray(c), jnp.asarray(y)
    m = shape[0]
    block = m if not block_size else min(block_size, m)
    grad_fn = grad_fn or jax.jit(loss_gradient_fn(kernel_fn, task))
    x_adv = x0
    for s in range(steps):
        if s == 0 and init_grad is not None:
            g = jnp.asarray(np.asarray(init_grad).reshape(shape))
        else:
            g = jnp.concatenate(
                [
                    grad_fn(x_adv[i : i + block], y[i : i + block], x_train, c)
                    for i in range(0, m, block)
                ]
            )
        x_adv = project(x_adv + step * jnp.sign(g), x0, eps)
    return np.asarray(x_adv, dtype=x_in.dtype).reshape(x_in.shape)


def pgd_rows_fn(
    kernel_fn: KernelFn, task: Task, steps: int, input_shape, loop: str = "fori"
) -> Callable:
    """PGD on a block of rows, each row its own (point, kernel machine, ε) job.

    Returns ``attack(x0, y, g0, cidx, eps, step, x_train, c_all) -> (x_adv, f_adv)``
    with x0, g0 (B, d) flattened clean points and their cached loss gradients (the
    first step, supp. Eqs. 5/8/9), y (B, k) targets, cidx (B,) int index of the
    row's kernel machine in c_all (n, M·k) (M machines side by side), eps and step
    (B,) the row's budget and step size, x_train (n, *input_shape). It runs the
    iteration of `pgd` (sign steps, projection onto the ε-ball ∩ [0, 1]^d, no random
    start) for `steps` steps and returns f_t at the final point (B, k), so the
    adversarial points need no separate kernel evaluation. x_train and c_all are
    arguments of the compiled functions (closing over them would constant-fold the
    training set into the program); one compilation per block shape and process
    (the jitted attack is cached per kernel, task, steps, shape and loop).

    Args:
        kernel_fn: analytic NTK.
        task: "binary" or "multiclass".
        steps: PGD iterations (>= 1; the first uses g0).
        input_shape: shape of one input (H, W, C).
        loop: "python" (a jitted step called `steps` − 1 times), "fori" (one jit
            with a lax.fori_loop) or "unrolled" (one jit, steps unrolled);
            benchmarks/bench_attacks.py compares them.
    """
    if loop not in ("python", "fori", "unrolled"):
        raise ValueError(f"loop must be 'python', 'fori' or 'unrolled', got {loop!r}")
    return _pgd_rows_jit(kernel_fn, task, int(steps), tuple(input_shape), loop)


def _predict_fn(kernel_fn: KernelFn, shape: tuple) -> Callable:
    """Pure (x (B, d), cidx (B,), x_train, c_all (n, M·k), k) -> f_t (B, k) of each
    row's machine."""

    def predict(x, cidx, x_train, c_all, k):
        rows = kernel_fn(x.reshape((x.shape[0],) + shape), x_train)  # (B, n)
        f_all = (rows @ c_all).reshape(x.shape[0], -1, k)  # (B, M, k)
        return jnp.take_along_axis(f_all, cidx[:, None, None], axis=1)[:, 0]

    return predict


def rows_loss_gradient_fn(kernel_fn: KernelFn, task: Task, shape: tuple) -> Callable:
    """Pure (x (B, d), y (B, k), cidx (B,), x_train, c_all) -> ∇ₓ Σ_b L(f_t(x_b), y_b)
    (B, d), each row with its own machine (the gradient of PGD's steps, Eqs. 5/8).

    By VJP through the rows (`jax.grad`; with the CONV kernel's rematerialised
    blocks: two forward passes and one backward), except for a binary task with a
    kernel that `prefers_one_pass` (the CONV kernel): L'(f_b)·∇ₓf_b with f_b and
    ∇ₓf_b from `weighted_rows_value_and_grad_fn` (one forward and one backward
    pass; equal up to rounding).

    Args:
        kernel_fn: analytic NTK.
        task: "binary" or "multiclass".
        shape: shape of one input (H, W, C).
    """
    predict = _predict_fn(kernel_fn, shape)
    one_pass = task == "binary" and prefers_one_pass(kernel_fn)
    rows_vg = weighted_rows_value_and_grad_fn(kernel_fn)

    def d_loss(fb: jax.Array, yb: jax.Array) -> jax.Array:
        return jax.grad(lambda v: loss(v[None], yb[None], task)[0])(fb)

    def loss_grad(x, y, cidx, x_train, c_all):
        if not one_pass:

            def total(z):
                f = predict(z, cidx, x_train, c_all, y.shape[1])
                return jnp.sum(loss(f, y, task))

            return jax.grad(total)(x)
        # binary (k = 1): f_b and ∇ₓf_b in one pass over the rows
        w = jnp.take(c_all, cidx, axis=1).T  # (B, n) each row's machine
        f, g = rows_vg(x.reshape((x.shape[0],) + shape), x_train, w)
        return jax.vmap(d_loss)(f[:, None], y) * g.reshape(x.shape)

    return loss_grad


@functools.lru_cache(maxsize=16)
def _pgd_rows_jit(
    kernel_fn: KernelFn, task: Task, steps: int, shape: tuple, loop: str
) -> Callable:
    """`pgd_rows_fn`'s jitted attack, one per (kernel, task, steps, shape, loop) in
    the process, so that calling `pgd_rows_fn` again reuses its compilations."""

    predict = _predict_fn(kernel_fn, shape)

    def box(x0, eps):
        return jnp.maximum(x0 - eps[:, None], 0.0), jnp.minimum(x0 + eps[:, None], 1.0)

    loss_grad = rows_loss_gradient_fn(kernel_fn, task, shape)

    def one_step(x, lo, hi, y, cidx, step, x_train, c_all):
        g = loss_grad(x, y, cidx, x_train, c_all)  # (B, d)
        return jnp.clip(x + step[:, None] * jnp.sign(g), lo, hi)

    def first(x0, g0, eps, step):
        lo, hi = box(x0, eps)
        return jnp.clip(x0 + step[:, None] * jnp.sign(g0), lo, hi), lo, hi

    def fused(x0, y, g0, cidx, eps, step, x_train, c_all):
        x, lo, hi = first(x0, g0, eps, step)
        args = (lo, hi, y, cidx, step, x_train, c_all)
        if loop == "fori":
            x = jax.lax.fori_loop(0, steps - 1, lambda _, z: one_step(z, *args), x)
        else:
            for _ in range(steps - 1):
                x = one_step(x, *args)
        return x, predict(x, cidx, x_train, c_all, y.shape[1])

    if loop in ("fori", "unrolled"):
        return jax.jit(fused)
    first_j, step_j = jax.jit(first), jax.jit(one_step)
    predict_j = jax.jit(predict, static_argnums=4)

    def attack(x0, y, g0, cidx, eps, step, x_train, c_all):
        x, lo, hi = first_j(x0, g0, eps, step)
        for _ in range(steps - 1):
            x = step_j(x, lo, hi, y, cidx, step, x_train, c_all)
        return x, predict_j(x, cidx, x_train, c_all, y.shape[1])

    return attack
