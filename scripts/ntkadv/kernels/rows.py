"""Weighted kernel rows and their input gradients in one pass (supp. App. B, Eq. 5).

PGD on a binary NTK predictor needs, per attacked point x_b, the output
f_b = Σ_j Θ(x_b, x_j) w_bj (w_b the row's coefficient vector, supp. Eq. 3) and
∇ₓL(f_b) = L'(f_b) ∇ₓ f_b (Eq. 5). Reverse mode through the rows, ∇ₓ Σ_b L(f_b),
must know L'(f_b), i.e. the whole row, before its backward pass starts: with the
rows' maps recomputed rather than stored (`ntkadv.kernels.conv._remat_block`) it
costs two forward passes and one backward. f_b is linear in the row, so ∇ₓ f_b
needs no L'(f_b): `weighted_rows_value_and_grad_fn` scans the training set in
column blocks and, per block, runs the block's forward and its backward together
(`jax.vjp` with cotangent 1, the block's maps still in cache), accumulating f_b and
∇ₓ f_b: one forward and one backward pass. For a k-output predictor it would take k
backward passes, so the multiclass attacks keep the two-pass VJP.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from ntkadv.typing import KernelFn

ONE_PASS_ATTR = "rows_one_pass"
"""Attribute a kernel function sets to True when its rows are computed a block of
training points at a time anyway (the CONV kernel), so that the one-pass gradient
(`weighted_rows_value_and_grad_fn`) costs no more per entry; matmul kernels (FC)
keep their (B, n) rows in one product."""


def prefers_one_pass(kernel_fn: KernelFn) -> bool:
    """Whether `kernel_fn` marks itself for one-pass row gradients (`ONE_PASS_ATTR`)."""
    return bool(getattr(kernel_fn, ONE_PASS_ATTR, False))


DEFAULT_ROW_BLOCK = 128
"""Training points per scanned column block: with one row per step the CONV
kernel's block has at most `ntkadv.kernels.conv.DEFAULT_BLOCK_PAIRS` pairs and is
computed in one piece (no inner `lax.map`, no rematerialisation)."""


def weighted_rows_value_and_grad_fn(
    kernel_fn: KernelFn, block: int = DEFAULT_ROW_BLOCK
) -> Callable:
    """Pure fn(x, x_train, w) -> (f, g): weighted kernel rows and their gradients.

    f_b = Σ_j Θ(x_b, x_j) w_bj and g_b = ∇_{x_b} f_b (the gradient of each row's
    own value; rows are independent), equal to ``kernel_fn(x, x_train)`` contracted
    with w and its VJP up to rounding.

    Args:
        kernel_fn: analytic kernel, kernel_fn(x1 (a, *shape), x2 (b, *shape)) ->
            (a, b), differentiable in x1.
        block: training points per scanned column block (only affects speed and
            memory: one row times one block of intermediates at a time).

    Returns:
        fn(x (B, *shape), x_train (n, *shape), w (B, n)) -> (f (B,), g (B, *shape)),
        jittable; the training set is padded to whole blocks with zero weights.
    """

    def fn(x: jax.Array, x_train: jax.Array, w: jax.Array):
        n = x_train.shape[0]
        cols = min(int(block), n)
        n_blk = -(-n // cols)
        extra = n_blk * cols - n
        if extra:  # repeat the last training point with weight 0
            x_train = jnp.concatenate(
                [x_train, jnp.repeat(x_train[-1:], extra, axis=0)], axis=0
            )
            w = jnp.concatenate([w, jnp.zeros((w.shape[0], extra), w.dtype)], axis=1)
        xt_b = x_train.reshape((n_blk, cols) + x_train.shape[1:])
        w_b = jnp.moveaxis(w.reshape(w.shape[0], n_blk, cols), 1, 0)  # (n_blk, B, cols)

        def one_row(x_r: jax.Array, xt: jax.Array, w_r: jax.Array):
            def value(z: jax.Array) -> jax.Array:
                return kernel_fn(z[None], xt)[0] @ w_r

            val, vjp = jax.vjp(value, x_r)
            return val, vjp(jnp.ones_like(val))[0]

        def body(carry, blk):
            f, g = carry
            xt, w_blk = blk
            v, dg = jax.lax.map(lambda r: one_row(r[0], xt, r[1]), (x, w_blk))
            return (f + v, g + dg), None

        init = (jnp.zeros(x.shape[0], x.dtype), jnp.zeros_like(x))
        (f, g), _ = jax.lax.scan(body, init, (xt_b, w_b))
        return f, g

    return fn
