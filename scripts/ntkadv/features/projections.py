"""Label-free projections p_i(x) = Θ(x, X) v_i at FGSM candidate points (jax).

The ± trick (`ntkadv.features.algebra`): the FGSM point of feature i at x is one of
x± = clip(x ± ε sign ∇p_i(x), 0, 1), whatever the training labels. This module
evaluates p_i at such points exactly, Θ(x_adv, X) v_i with the analytic kernel, for
many (feature, point) pairs at once:

* `pair_projection_fn` is the pure, jittable kernel of one batch: B pairs, each with
  its own perturbed input and its own eigenvector, the training set scanned block by
  block inside the jitted function (peak memory: one (B, train_block) kernel block);
* `PairProjector` jits it once (one compiled shape: the last batch is padded) and
  loops over batches in Python (the house jit boundary);
  `ntkadv.features.scoring.perturbed_projections` feeds it (feature, point) pairs.

The kernel function is any `KernelFn` (`ntkadv.kernels.analytic.kernel_fn_from_spec`
or a faster drop-in with the same signature); nothing here depends on its family.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ntkadv.typing import KernelFn


def pair_projection_fn(kernel_fn: KernelFn, image_shape: Sequence[int]) -> Callable:
    """Pure fn(x0, sign_g, side, eps, xt_blocks, v_blocks) -> p (B,).

    p_b = Σ_j Θ(clip(x0_b + ε·side_b·sign_g_b, 0, 1), x_j) v_b[j] (supp. Eq. 31 at a
    perturbed point), with the training points in blocks:

    Args (of the returned function):
        x0: (B, d) clean points (flattened).
        sign_g: (B, d) sign ∇p_i(x) of each pair's feature at its point.
        side: (B,) ±1 (or 0 for no perturbation).
        eps: ℓ∞ budget (scalar).
        xt_blocks: (nb, b2, d) training points, padded by repeating the last one.
        v_blocks: (nb, b2, B) each pair's eigenvector over those training points
            (zero on padding rows).
    """
    shape = tuple(int(s) for s in image_shape)

    def fn(x0, sign_g, side, eps, xt_blocks, v_blocks):
        x = jnp.clip(x0 + (eps * side)[:, None] * sign_g, 0.0, 1.0)
        x = x.reshape(x.shape[0], *shape)

        def body(acc, block):
            xt, v = block
            k = kernel_fn(x, xt.reshape(xt.shape[0], *shape))  # (B, b2)
            return acc + jnp.einsum("bj,jb->b", k, v), None

        acc0 = jnp.zeros(x.shape[0], dtype=x.dtype)
        acc, _ = jax.lax.scan(body, acc0, (xt_blocks, v_blocks))
        return acc

    return fn


class PairProjector:
    """p_i at perturbed points for many (feature, point) pairs, jitted once.

    Args:
        kernel_fn: analytic kernel, kernel_fn(x1 (a, *shape), x2 (b, *shape)).
        x_train: (n, *shape) training inputs.
        batch: pairs per call (B).
        train_block: training points per scanned kernel block (b2).
        dtype: computation dtype (float64 with x64).
    """

    def __init__(
        self,
        kernel_fn: KernelFn,
        x_train: np.ndarray,
        batch: int,
        train_block: int,
        dtype=np.float64,
    ):
        x_train = np.asarray(x_train, dtype=dtype)
        self.n, self.shape = x_train.shape[0], x_train.shape[1:]
        self.d = int(np.prod(self.shape))
        self.batch, self.dtype = int(batch), dtype
        b2 = min(int(train_block), self.n)
        self.nb = -(-self.n // b2)
        pad = self.nb * b2 - self.n
        flat = x_train.reshape(self.n, self.d)
        if pad:
            flat = np.concatenate([flat, np.repeat(flat[-1:], pad, axis=0)])
        self.b2, self.pad = b2, pad
        self.xt_blocks = jnp.asarray(flat.reshape(self.nb, b2, self.d))
        self._fn = jax.jit(pair_projection_fn(kernel_fn, self.shape))
        self.calls = 0

    def __call__(
        self,
        x0: np.ndarray,
        sign_g: np.ndarray,
        side: np.ndarray,
        v: np.ndarray,
        eps: float,
    ) -> np.ndarray:
        """p at clip(x0 + ε side sign_g) with per-pair eigenvectors.

        Args:
            x0: (P, d) clean points; sign_g: (P, d) signs; side: (P,) in {−1, 0, 1}.
            v: (n, P) each pair's eigenvector.
            eps: ℓ∞ budget.

        Returns:
            (P,) float64 projections.
        """
        total = x0.shape[0]
        out = np.empty(total, dtype=np.float64)
        b = self.batch
        for lo in range(0, total, b):
            hi = min(lo + b, total)
            sl = slice(lo, hi)
            xb = _pad(np.asarray(x0[sl], self.dtype), b)
            gb = _pad(np.asarray(sign_g[sl], self.dtype), b)
            sb = _pad(np.asarray(side[sl], self.dtype), b)
            vb = np.zeros((self.nb * self.b2, b), dtype=self.dtype)
            vb[: self.n, : hi - lo] = v[:, sl]
            p = self._fn(
                xb,
                gb,
                sb,
                self.dtype(eps),
                self.xt_blocks,
                jnp.asarray(vb.reshape(self.nb, self.b2, b)),
            )
            out[sl] = np.asarray(p, dtype=np.float64)[: hi - lo]
            self.calls += 1
        return out


def _pad(a: np.ndarray, size: int) -> np.ndarray:
    """Repeat the last row of `a` up to `size` rows (one compiled shape)."""
    short = size - a.shape[0]
    if short <= 0:
        return a
    return np.concatenate([a, np.repeat(a[-1:], short, axis=0)])
