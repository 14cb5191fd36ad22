"""Blocked evaluation of kernel matrices: one jitted block, a Python loop over blocks.

`ntk_gram_blocked` jits the per-block kernel once (the last, shorter blocks are padded
so there is one compiled shape) and loops over blocks in Python, so peak memory is one
block of intermediates and the output may be an h5py dataset filled in place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ntkadv.typing import KernelFn


def pad_rows(x: jax.Array, size: int) -> jax.Array:
    """Repeat the last row so every block has `size` rows (one compiled shape)."""
    short = size - x.shape[0]
    if short == 0:
        return x
    return jnp.concatenate([x, jnp.repeat(x[-1:], short, axis=0)], axis=0)


def block_starts(n: int, block_size: int) -> list[tuple[int, int]]:
    """[(start, stop), ...] covering range(n) in blocks of `block_size`."""
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    return [(i, min(i + block_size, n)) for i in range(0, n, block_size)]


def ntk_gram_blocked(
    kernel_fn: KernelFn,
    x1: jax.Array | np.ndarray,
    x2: jax.Array | np.ndarray | None = None,
    block_size: int = 100,
    *,
    symmetric: bool | None = None,
    out: Any = None,
    progress: Callable[[int], None] | None = None,
) -> Any:
    """Kernel matrix K[i, j] = kernel_fn(x1[i], x2[j]) computed block by block.

    The per-block function is jitted once (the last, shorter blocks are padded by
    repeating their last row, so there is a single compiled shape); the block loop
    runs in Python, so at most one (block_size, block_size) block of intermediates
    exists at a time. When symmetric, only blocks on and above the diagonal are
    computed and mirrored; the result is then exactly symmetric.

    Args:
        kernel_fn: kernel_fn(a (b1, *shape), b (b2, *shape)) -> (b1, b2).
        x1: (n1, *shape) inputs.
        x2: (n2, *shape) inputs; None means x1 (when symmetric, x2 must equal x1
            and only x1 is used).
        block_size: rows/columns per block.
        symmetric: use Θ(x, x') = Θ(x', x); default: x2 is None or x2 is x1.
        out: optional writable (n1, n2) array-like (NumPy array or h5py dataset,
            ideally chunked by blocks) that receives the blocks; default a new
            NumPy array.
        progress: called with 1 after each computed block (e.g. a
            `ntkadv.timing.Progress` of `n_blocks(n1, n2, block_size, symmetric)`).

    Returns:
        `out`, filled with float64 values ((n1, n2) NumPy array by default).
    """
    if symmetric is None:
        symmetric = x2 is None or x2 is x1
    x2 = x1 if x2 is None else x2
    if symmetric and np.shape(x2) != np.shape(x1):
        raise ValueError("symmetric Gram needs x2 equal to x1")
    x1 = jnp.asarray(x1)
    x2 = x1 if symmetric else jnp.asarray(x2)
    n1, n2 = x1.shape[0], x2.shape[0]
    if out is None:
        out = np.empty((n1, n2), dtype=np.float64)
    if tuple(out.shape) != (n1, n2):
        raise ValueError(f"out has shape {out.shape}, expected {(n1, n2)}")
    b1, b2 = min(block_size, n1), min(block_size, n2)
    block_fn = jax.jit(kernel_fn)
    rows2 = [(j0, j1, pad_rows(x2[j0:j1], b2)) for j0, j1 in block_starts(n2, b2)]
    for i0, i1 in block_starts(n1, b1):
        xb1 = pad_rows(x1[i0:i1], b1)
        for j0, j1, xb2 in rows2:
            if symmetric and j0 < i0:
                continue
            k = np.asarray(block_fn(xb1, xb2), dtype=np.float64)[: i1 - i0, : j1 - j0]
            if symmetric and i0 == j0:
                k = np.triu(k) + np.triu(k, 1).T
            out[i0:i1, j0:j1] = k
            if symmetric and j0 > i0:
                out[j0:j1, i0:i1] = k.T
            if progress is not None:
                progress(1)
    return out


def n_blocks(n1: int, n2: int, block_size: int, symmetric: bool) -> int:
    """Blocks `ntk_gram_blocked` computes: all, or those on and above the diagonal."""
    r = len(block_starts(n1, min(block_size, n1)))
    c = len(block_starts(n2, min(block_size, n2)))
    return r * (r + 1) // 2 if symmetric else r * c
