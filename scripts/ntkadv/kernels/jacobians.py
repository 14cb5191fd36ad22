"""Input Jacobian of the NTK at evaluation points, D(x) = ∂Θ(x, X_train)/∂x.

The closed-form attacks of Tsilivis & Kempe (2022) need the input gradient of the
kernel machine f(x) = Θ(x, X) c (supp. Eq. 9): ∇ₓ f(x) = D(x)ᵀ c, with D(x) the
(n, d) Jacobian of the kernel row Θ(x, X) (supp. Eq. 26-27 write it out per output).
`InputJacobian.contract(c)` returns exactly that for all evaluation points.

Two storage forms:

* ``factored`` (fc and twolayer families). These kernels depend on x only through
  xᵀx, xᵀx_j and x_jᵀx_j, so ∇ₓΘ(x, x_j) = a·x + b·x_j exactly. Per pair the two
  forward-mode derivatives u = ∇Θ·x and v = ∇Θ·x_j satisfy
  [u, v] = [[p, s], [s, q]] [a, b] (p = |x|², q = |x_j|², s = xᵀx_j); the 2 x 2
  system is solved in Gram-Schmidt form, with the minimum-norm solution when
  x ∥ x_j. Only a, b (m, n) are stored; the evaluation and training inputs are kept
  to contract.
* ``dense`` (conv and myrtle families): no per-pair structure, so D(x_i) is a full
  (n, d) matrix per point. It is **not stored**: the cache file holds only the
  inputs and the kernel spec, and `ImplicitJacobian.contract(C)` recomputes the
  per-pair gradient tiles D(x_rows, X_tile) (the same jitted vmapped `grad` and
  the same tile shapes the stored form used) and contracts each tile with C[tile]
  at once, accumulating over training tiles. Peak memory is one tile
  (rows x block_size x d) plus the (m, d, K) result, not m·n·d.
  `input_jacobian_fn(..., 'dense')` still materialises D in memory: that is the
  test reference (checked against `jax.jacrev`) at small size.

Why recompute instead of storing (issue 24, "compact Jacobians")? Every consumer
needs D(x)ᵀ C only, for coefficient sets C it builds itself: the eigenvectors it
scores (features), c_t of every time and label set (attacks), the top-r ranking
groups, Prop. 1's per-point u, the transfer reference's c. Three ways to serve that:

(a) store D(x)ᵀ C for all consumers' C's: the Jacobian job would need eigh.h5 and
    every consumer's settings (a DAG change; any edit of an attack or feature
    setting reruns it) and must reproduce their coefficient code; ~2.2-2.4 GB per
    paper-scale CIFAR-2 CONV kernel.
(b) recompute tiles inside the consumer (chosen): the file shrinks to the inputs
    ((m + n)·d float64, 0.26 GB at m = 1000, n = 10,000, d = 3072; see
    `ntkadv.sizing.jacobian_disk_mb`), no DAG change, no coupling of the kernel
    stage to the consumers' settings, and no 123 GB write + read. The price is one
    Jacobian computation per consumer *call*: measured 47-79 µs per pair (0.1-0.2 h
    per paper-scale CONV kernel, issue 24), against ~20 h (attacks) and ~1.6 h
    (features) of the same jobs. Consumers therefore batch all their C's into one
    call per evaluation-row range (attacks: one call per tile with every (set, time)
    column; features: one call for all scored indices). Top-r still makes two calls
    per label set; its kernel is FC (factored) in every shipped config.
(c) a low-rank or eigen-rotated store (D(x)ᵀ V for all n eigenvectors) has the
    dense size again, so it does not help.

The tiles are rounded to float32 before the contraction, exactly as the stored
dense form was, so every consumer's numbers match the old cache up to the
summation order (checked at smoke size, `tests/unit/kernels`).

Convention at x = x_j (and x ∥ x_j): the kernels have a cone-shaped kink in the
angle there; the gradient returned is the one with zero angular part (what
neural-tangents' safe sqrt and `kernels.twolayer_ntk` return, and what central
differences measure).

File I/O: `write_input_jacobian` goes through `h5io.atomic_h5`, `load_input_jacobian`
through `h5io.read`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ntkadv import h5io
from ntkadv.kernels.blocked import block_starts, pad_rows
from ntkadv.kernels.families import dense_tile_rows
from ntkadv.kernels.families import jacobian_form as _registry_form
from ntkadv.typing import Form, KernelFn

#: Dtype the dense tiles are rounded to before a contraction (that of the former
#: stored dense cache, so numbers match it; see the module docstring).
TILE_DTYPE = np.float32


def jacobian_form(family: str) -> Form:
    """Storage form used for an architecture family ('factored' or 'dense'), from
    the registry `ntkadv.kernels.families`."""
    return _registry_form(family)


def _pair_fn(kernel_fn: KernelFn) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """Scalar Θ(x_i, x_j) of two single inputs of shape `input_shape`."""

    def pair(xi: jax.Array, xj: jax.Array) -> jax.Array:
        return kernel_fn(xi[None], xj[None])[0, 0]

    return pair


def solve_factored(u, v, p, q, s):
    """Coefficients (a, b) with ∇ = a x_i + b x_j from u = ∇·x_i and v = ∇·x_j.

    Solves [[p, s], [s, q]] [a, b] = [u, v] as b = (v − αu) / ρ, a = (u − b s) / p with
    α = s / p and ρ = q − α s = |x_j − α x_i|². When sin²∠(x_i, x_j) = ρ / q is below
    √eps the pair is treated as parallel and the minimum-norm solution
    a = u / (p (1 + α²)), b = α a is returned; for x_i = 0, a = 0 and b = v / q.
    All arguments broadcast elementwise.
    """
    tol = jnp.sqrt(jnp.finfo(jnp.result_type(u, p)).eps)
    has_p = p > 0
    p_ = jnp.where(has_p, p, 1.0)
    alpha = s / p_
    rho = q - alpha * s
    general = has_p & (rho > tol * q)
    rho_ = jnp.where(general, rho, 1.0)
    b_gen = (v - alpha * u) / rho_
    a_gen = (u - b_gen * s) / p_
    a_par = u / (p_ * (1.0 + alpha * alpha))
    b_par = alpha * a_par
    b_zero = v / jnp.where(q > 0, q, 1.0)
    a = jnp.where(general, a_gen, jnp.where(has_p, a_par, 0.0))
    b = jnp.where(general, b_gen, jnp.where(has_p, b_par, b_zero))
    return a, b


def factored_tile_fn(kernel_fn: KernelFn) -> Callable:
    """Pure (x_eval (r, *shape), x_train (c, *shape)) -> (a (r, c), b (r, c)).

    Valid for kernels that depend on the inputs only through their inner products
    (fc and twolayer families): ∇ₓΘ(x_i, x_j) = a_ij x_i + b_ij x_j.
    """
    pair = _pair_fn(kernel_fn)

    def one(xi: jax.Array, xj: jax.Array):
        _, lin = jax.linearize(lambda x: pair(x, xj), xi)
        u, v = lin(xi), lin(xj)
        fi, fj = xi.reshape(-1), xj.reshape(-1)
        return solve_factored(u, v, fi @ fi, fj @ fj, fi @ fj)

    return jax.vmap(jax.vmap(one, in_axes=(None, 0)), in_axes=(0, None))


def dense_tile_fn(kernel_fn: KernelFn) -> Callable:
    """Pure (x_eval (r, *shape), x_train (c, *shape)) -> (r, c, d) ∂Θ(x_i, x_j)/∂x_i."""
    grad = jax.grad(_pair_fn(kernel_fn), argnums=0)

    def tile(x_eval: jax.Array, x_train: jax.Array) -> jax.Array:
        g = jax.vmap(jax.vmap(grad, in_axes=(None, 0)), in_axes=(0, None))(
            x_eval, x_train
        )
        return g.reshape(x_eval.shape[0], x_train.shape[0], -1)

    return tile


@functools.lru_cache(maxsize=32)
def _jitted_tile_fn(kernel_fn: KernelFn, form: Form) -> Callable:
    """Jitted tile function returning a tuple of arrays; cached per (kernel_fn, form)
    so that repeated builds with the same kernel do not recompile."""
    if form == "factored":
        return jax.jit(factored_tile_fn(kernel_fn))
    dense = dense_tile_fn(kernel_fn)
    return jax.jit(lambda x_eval, x_train: (dense(x_eval, x_train),))


def iter_input_jacobian_blocks(
    kernel_fn: KernelFn,
    form: Form,
    x_eval: jax.Array | np.ndarray,
    x_train: jax.Array | np.ndarray,
    block_size: int = 100,
) -> Iterator[tuple[int, int, dict[str, np.ndarray]]]:
    """Compute the Jacobian cache row block by row block (one jitted tile function).

    Tiles are (rows, block_size) pairs with rows = block_size (factored) or
    `dense_tile_rows(block_size, n, d)` (dense); the last, shorter tiles are padded so
    there is one compiled shape. Each yielded row block covers all training points.

    Args:
        kernel_fn: analytic kernel, kernel_fn(x1 (a, *shape), x2 (b, *shape)) -> (a, b).
        form: 'factored' or 'dense' (see module docstring).
        x_eval: (m, *shape) evaluation points.
        x_train: (n, *shape) training points.
        block_size: training points per tile (and evaluation points per factored tile).

    Yields:
        (i0, i1, arrays) with arrays {'a', 'b'}: (i1 − i0, n) float64 (factored) or
        {'jacobian'}: (i1 − i0, n, d) in the inputs' dtype (dense).
    """
    x_eval, x_train = jnp.asarray(x_eval), jnp.asarray(x_train)
    m, n = x_eval.shape[0], x_train.shape[0]
    cols = min(block_size, n)
    if form not in ("factored", "dense"):
        raise ValueError(f"form must be 'factored' or 'dense', got {form!r}")
    keys = ("a", "b") if form == "factored" else ("jacobian",)
    d = int(np.prod(x_eval.shape[1:]))
    rows = block_size if form == "factored" else dense_tile_rows(block_size, n, d)
    rows = min(rows, m)
    tile_fn = _jitted_tile_fn(kernel_fn, form)
    col_blocks = [
        (j0, j1, pad_rows(x_train[j0:j1], cols)) for j0, j1 in block_starts(n, cols)
    ]
    for i0, i1 in block_starts(m, rows):
        xe = pad_rows(x_eval[i0:i1], rows)
        parts: dict[str, list[np.ndarray]] = {key: [] for key in keys}
        for j0, j1, xt in col_blocks:
            for key, tile in zip(keys, tile_fn(xe, xt), strict=True):
                parts[key].append(np.asarray(tile)[: i1 - i0, : j1 - j0])
        arrays = {key: np.concatenate(parts[key], axis=1) for key in keys}
        yield i0, i1, arrays


def _check_coefficients(c: np.ndarray, n: int) -> tuple[np.ndarray, bool]:
    """(c as (n, K) float64, whether c was 1-D); ValueError on a wrong shape."""
    c = np.asarray(c, dtype=np.float64)
    vector = c.ndim == 1
    c2 = c[:, None] if vector else c
    if c2.shape[0] != n or c2.ndim != 2:
        raise ValueError(f"c must be (n={n}, K), got {c.shape}")
    return c2, vector


def _check_weights(
    c: np.ndarray, g: np.ndarray, n: int, m: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """(c (n, K) and g (m, K) as float64, evaluation rows per block of 2^24
    weights); ValueError on a wrong shape."""
    c2, _ = _check_coefficients(c, n)
    g = np.asarray(g, dtype=np.float64)
    if g.shape != (m, c2.shape[1]):
        raise ValueError(f"g must be (m={m}, K={c2.shape[1]}), got {g.shape}")
    return c2, g, max(1, 2**24 // max(1, n))


def _check_rows(i0: int, i1: int, m: int) -> None:
    if not 0 <= i0 <= i1 <= m:
        raise ValueError(f"rows {i0}:{i1} outside the {m} cached points")


def _check_train(n_sub: int, n: int) -> None:
    if not 0 < n_sub <= n:
        raise ValueError(f"n={n_sub} outside 1..{n} cached training points")


class _Shapes:
    """m, n, d of a Jacobian cache over `x_eval` (m, d) and `x_train` (n, d)."""

    x_eval: np.ndarray
    x_train: np.ndarray

    @property
    def m(self) -> int:
        """Number of evaluation points."""
        return self.x_eval.shape[0]

    @property
    def n(self) -> int:
        """Number of training points."""
        return self.x_train.shape[0]

    @property
    def d(self) -> int:
        """Flattened input dimension."""
        return self.x_eval.shape[1]


@dataclasses.dataclass(frozen=True, eq=False)
class InputJacobian(_Shapes):
    """D(x_i) = ∂Θ(x_i, X_train)/∂x_i for m evaluation points, held in memory.

    Attributes:
        form: 'factored' (a, b set) or 'dense' (`dense` set; the test reference).
        x_eval: (m, d) flattened evaluation points.
        x_train: (n, d) flattened training points.
        a, b: (m, n) float64 coefficients, ∇ₓΘ(x_i, x_j) = a_ij x_i + b_ij x_j.
        dense: (m, n, d) Jacobian (dense form), or None.

    Use `eval_subset` / `train_subset` for restrictions; do not rebuild the object
    from its fields.
    """

    form: Form
    x_eval: np.ndarray
    x_train: np.ndarray
    a: np.ndarray | None = None
    b: np.ndarray | None = None
    dense: np.ndarray | None = None

    def eval_subset(self, i0: int, i1: int) -> InputJacobian:
        """The cache restricted to evaluation points i0:i1 (nothing is copied)."""
        _check_rows(i0, i1, self.m)
        if self.form == "factored":
            return dataclasses.replace(
                self, x_eval=self.x_eval[i0:i1], a=self.a[i0:i1], b=self.b[i0:i1]
            )
        return dataclasses.replace(
            self, x_eval=self.x_eval[i0:i1], dense=self.dense[i0:i1]
        )

    def train_subset(self, n: int) -> InputJacobian:
        """The cache over the first `n` training points only (supp. App. C subsets)."""
        _check_train(n, self.n)
        if n == self.n:
            return self
        if self.form == "factored":
            return dataclasses.replace(
                self, x_train=self.x_train[:n], a=self.a[:, :n], b=self.b[:, :n]
            )
        return dataclasses.replace(
            self, x_train=self.x_train[:n], dense=self.dense[:, :n]
        )

    def rows(self, i0: int, i1: int) -> np.ndarray:
        """Dense block D[i0:i1] of shape (i1 − i0, n, d), float64 (materialised)."""
        if self.form == "factored":
            xe = self.x_eval[i0:i1]
            return (
                self.a[i0:i1, :, None] * xe[:, None, :]
                + self.b[i0:i1, :, None] * self.x_train[None, :, :]
            )
        return np.asarray(self.dense[i0:i1], dtype=np.float64)

    def contract(self, c: np.ndarray) -> np.ndarray:
        """∇ₓ Σ_j Θ(x_i, x_j) c_jk for every evaluation point (supp. Eq. 9: D(x)ᵀ c).

        Args:
            c: (n, K) coefficients (or (n,)).

        Returns:
            (m, d, K) float64 (or (m, d) for 1-D c); d in x.reshape(m, -1) order.
        """
        c2, vector = _check_coefficients(c, self.n)
        k = c2.shape[1]
        out = np.empty((self.m, self.d, k), dtype=np.float64)
        if self.form == "factored":
            out[...] = self.x_eval[:, :, None] * (self.a @ c2)[:, None, :]
            step = max(1, 2**24 // max(1, self.m * self.n))
            for k0, k1 in block_starts(k, step):
                bc = self.b[:, None, :] * c2[:, k0:k1].T[None]  # (m, kc, n)
                # one 2-D GEMM (a stacked 3-D matmul is ~13x slower in numpy)
                g = bc.reshape(-1, self.n) @ self.x_train
                g = g.reshape(self.m, k1 - k0, self.d)
                out[:, :, k0:k1] += np.swapaxes(g, 1, 2)
        else:
            out[...] = np.swapaxes(self.dense, 1, 2).astype(np.float64) @ c2
        return out[:, :, 0] if vector else out

    def contract_weighted(self, c: np.ndarray, g: np.ndarray) -> np.ndarray:
        """Σ_k g_ik ∇ₓ f_k(x_i) with f_k = Θ(·, X) c_k: D(x_i)ᵀ (C g_i) per point.

        The loss gradient ∇ₓL = Σ_k ∂L/∂f_k ∇ₓf_k (supp. Eqs. 5/8 with Eq. 9) with
        g = ∂L/∂f, in one (m, n) x (n, d) product instead of K (`contract` then
        summing over k): the factored form gives x_i Σ_j a_ij w_ij + Σ_j b_ij w_ij x_j
        with w_i = C g_i, in row blocks of at most 2^24 weights.

        Args:
            c: (n, K) coefficients.
            g: (m, K) weights per evaluation point.

        Returns:
            (m, d) float64.
        """
        c2, g, w_rows = _check_weights(c, g, self.n, self.m)
        out = np.empty((self.m, self.d), dtype=np.float64)
        for i0, i1 in block_starts(self.m, w_rows):
            w = g[i0:i1] @ c2.T  # (rows, n)
            if self.form == "factored":
                lin = np.sum(self.a[i0:i1] * w, axis=1)[:, None]
                out[i0:i1] = self.x_eval[i0:i1] * lin + (self.b[i0:i1] * w) @ (
                    self.x_train
                )
            else:
                dense = np.asarray(self.dense[i0:i1], dtype=np.float64)
                out[i0:i1] = np.einsum("rnd,rn->rd", dense, w)
        return out


@dataclasses.dataclass(frozen=True, eq=False)
class ImplicitJacobian(_Shapes):
    """The dense-family D(x_i) = ∂Θ(x_i, X_train)/∂x_i, never stored: `contract`
    recomputes gradient tiles and contracts them at once (see the module docstring).

    Same interface as `InputJacobian` (m, n, d, eval_subset, train_subset, rows,
    contract), so consumers do not see the difference.

    Attributes:
        kernel_fn: analytic kernel, kernel_fn(x1 (a, *shape), x2 (b, *shape)) -> (a, b).
        x_eval: (m, d) flattened evaluation points, in the compute dtype.
        x_train: (n, d) flattened training points, in the compute dtype.
        input_shape: per-point input shape (H, W, C); prod = d.
        block_size: training points per tile (the Jacobian job's block size; the
            rows per tile are `dense_tile_rows(block_size, n, d)`).
        form: always 'dense' (the family's form).
    """

    kernel_fn: KernelFn
    x_eval: np.ndarray
    x_train: np.ndarray
    input_shape: tuple[int, ...]
    block_size: int = 100
    form: Form = "dense"

    def eval_subset(self, i0: int, i1: int) -> ImplicitJacobian:
        """The cache restricted to evaluation points i0:i1 (nothing is computed)."""
        _check_rows(i0, i1, self.m)
        return dataclasses.replace(self, x_eval=self.x_eval[i0:i1])

    def train_subset(self, n: int) -> ImplicitJacobian:
        """The cache over the first `n` training points only (supp. App. C subsets)."""
        _check_train(n, self.n)
        return dataclasses.replace(self, x_train=self.x_train[:n])

    def _tiles(
        self, i0: int, i1: int
    ) -> Iterator[tuple[int, int, int, int, np.ndarray]]:
        """(r0, r1, j0, j1, D[r0:r1, j0:j1] float64 rounded to TILE_DTYPE) over the
        rows i0:i1, in tiles of `dense_tile_rows(block_size, n, d)` x block_size."""
        n, d = self.n, self.d
        cols = max(1, min(self.block_size, n))
        rows = max(1, min(dense_tile_rows(self.block_size, n, d), i1 - i0))
        tile_fn = _jitted_tile_fn(self.kernel_fn, "dense")
        shape = (-1, *self.input_shape)
        x_train = self.x_train.reshape(shape)
        col_blocks = [
            (j0, j1, pad_rows(jnp.asarray(x_train[j0:j1]), cols))
            for j0, j1 in block_starts(n, cols)
        ]
        for r0, r1 in block_starts(i1 - i0, rows):
            r0, r1 = r0 + i0, r1 + i0
            xe = pad_rows(jnp.asarray(self.x_eval[r0:r1].reshape(shape)), rows)
            for j0, j1, xt in col_blocks:
                (tile,) = tile_fn(xe, xt)
                part = np.asarray(tile)[: r1 - r0, : j1 - j0]
                if not np.all(np.isfinite(part)):
                    raise FloatingPointError(
                        f"non-finite input-Jacobian tile rows {r0}:{r1}, "
                        f"columns {j0}:{j1}"
                    )
                yield r0, r1, j0, j1, part.astype(TILE_DTYPE).astype(np.float64)

    def rows(self, i0: int, i1: int) -> np.ndarray:
        """Dense block D[i0:i1] of shape (i1 − i0, n, d), float64 (materialised;
        for tests and small blocks only)."""
        _check_rows(i0, i1, self.m)
        out = np.empty((i1 - i0, self.n, self.d), dtype=np.float64)
        for r0, r1, j0, j1, tile in self._tiles(i0, i1):
            out[r0 - i0 : r1 - i0, j0:j1] = tile
        return out

    def contract(self, c: np.ndarray) -> np.ndarray:
        """∇ₓ Σ_j Θ(x_i, x_j) c_jk for every evaluation point (supp. Eq. 9: D(x)ᵀ c),
        each gradient tile contracted as soon as it is computed.

        Every call recomputes D, so pass all coefficient sets of a row range in one
        call (cost ≈ one dense Jacobian of the rows, + m·n·d·K multiply-adds).

        Args:
            c: (n, K) coefficients (or (n,)).

        Returns:
            (m, d, K) float64 (or (m, d) for 1-D c); d in x.reshape(m, -1) order.
        """
        c2, vector = _check_coefficients(c, self.n)
        out = np.zeros((self.m, self.d, c2.shape[1]), dtype=np.float64)
        for r0, r1, j0, j1, tile in self._tiles(0, self.m):
            out[r0:r1] += np.swapaxes(tile, 1, 2) @ c2[j0:j1]
        return out[:, :, 0] if vector else out

    def contract_weighted(self, c: np.ndarray, g: np.ndarray) -> np.ndarray:
        """Σ_k g_ik ∇ₓ f_k(x_i) = D(x_i)ᵀ (C g_i), (m, d) float64, as
        `InputJacobian.contract_weighted`; each recomputed tile (rows, cols, d) is
        contracted with its weights (g C[cols]ᵀ) at once."""
        c2, g, _ = _check_weights(c, g, self.n, self.m)
        out = np.zeros((self.m, self.d), dtype=np.float64)
        for r0, r1, j0, j1, tile in self._tiles(0, self.m):
            w = g[r0:r1] @ c2[j0:j1].T
            out[r0:r1] += np.einsum("rjd,rj->rd", tile, w)
        return out


def _flat64(x: jax.Array | np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    return x.reshape(x.shape[0], -1).astype(np.float64)


def input_jacobian_fn(kernel_fn: KernelFn, family_or_form: str) -> Callable:
    """In-memory Jacobian cache factory (no files).

    Args:
        kernel_fn: analytic kernel of the architecture.
        family_or_form: 'fc' | 'twolayer' | 'conv' or directly 'factored' | 'dense'.

    Returns:
        fn(x_eval (m, *shape), x_train (n, *shape), block_size=100) -> InputJacobian.
    """
    form = (
        family_or_form
        if family_or_form in ("factored", "dense")
        else jacobian_form(family_or_form)
    )

    def build(x_eval, x_train, block_size: int = 100) -> InputJacobian:
        parts: dict[str, list[np.ndarray]] = {}
        for _, _, arrays in iter_input_jacobian_blocks(
            kernel_fn, form, x_eval, x_train, block_size
        ):
            for key, value in arrays.items():
                parts.setdefault(key, []).append(value)
        full = {key: np.concatenate(v, axis=0) for key, v in parts.items()}
        return InputJacobian(
            form=form,
            x_eval=_flat64(x_eval),
            x_train=_flat64(x_train),
            a=full.get("a"),
            b=full.get("b"),
            dense=full.get("jacobian"),
        )

    return build


def write_input_jacobian(
    path: str | os.PathLike,
    kernel_fn: KernelFn,
    form: Form,
    x_eval: jax.Array | np.ndarray,
    x_train: jax.Array | np.ndarray,
    block_size: int = 100,
    attrs: Mapping[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Compute the Jacobian cache and write it block by block (atomically) to HDF5.

    `progress`, if given, is called with the number of evaluation rows of each
    written block (e.g. a `ntkadv.timing.Progress` over m rows).

    Datasets: `x_eval` (m, d), `x_train` (n, d) (input dtype), and for the
    factored form `a`, `b` (m, n) float64. The dense form stores no Jacobian
    (`ImplicitJacobian` recomputes it): its job computes the first evaluation
    point's row D(x_0) (1, n, d) as a finiteness check and records the measured
    `seconds_per_pair`. Attrs: `attrs` plus form, storage ('factored' |
    'implicit'), m, n, d, input_shape, block_size and wall_time_s.

    Raises:
        FloatingPointError: if a block has non-finite entries (nothing is written).
    """
    start = time.perf_counter()
    xe, xt = np.asarray(x_eval), np.asarray(x_train)
    m, n, d = xe.shape[0], xt.shape[0], int(np.prod(xe.shape[1:]))
    storage = "factored" if form == "factored" else "implicit"
    meta = {
        **(attrs or {}),
        "form": form,
        "storage": storage,
        "m": m,
        "n": n,
        "d": d,
        "input_shape": list(xe.shape[1:]),
        "block_size": int(block_size),
    }
    size = (m + n) * d * xe.itemsize + (m * n * 16 if form == "factored" else 0)
    if form not in ("factored", "dense"):
        raise ValueError(f"form must be 'factored' or 'dense', got {form!r}")
    with h5io.atomic_h5(path, meta, expected_bytes=size) as f:
        f.create_dataset("x_eval", data=xe.reshape(m, d))
        f.create_dataset("x_train", data=xt.reshape(n, d))
        if form == "factored":
            dsets = {k: f.create_dataset(k, (m, n), dtype=np.float64) for k in "ab"}
            for i0, i1, arrays in iter_input_jacobian_blocks(
                kernel_fn, form, x_eval, x_train, block_size
            ):
                for key, value in arrays.items():
                    if not np.all(np.isfinite(value)):
                        raise FloatingPointError(f"non-finite {key} for rows {i0}:{i1}")
                    dsets[key][i0:i1] = value
                if progress is not None:
                    progress(i1 - i0)
        elif m:
            jac = ImplicitJacobian(
                kernel_fn, xe.reshape(m, d), xt.reshape(n, d), xe.shape[1:], block_size
            )
            t0 = time.perf_counter()
            jac.rows(0, 1)  # raises FloatingPointError on a non-finite entry
            f.attrs["seconds_per_pair"] = (time.perf_counter() - t0) / n
            if progress is not None:
                progress(m)
        f.attrs["wall_time_s"] = time.perf_counter() - start


def load_input_jacobian(
    path: str | os.PathLike, kernel_fn: KernelFn | None = None
) -> InputJacobian | ImplicitJacobian:
    """Open a Jacobian cache written by `write_input_jacobian`.

    The factored form is read into memory. The dense form returns an
    `ImplicitJacobian` over the stored inputs (in their stored dtype), whose kernel
    is `kernel_fn` or, if None, `kernel_fn_from_spec(attrs['arch_spec'])`.
    """
    attrs = h5io.read_attrs(path)
    form, storage = attrs["form"], attrs.get("storage")
    if form == "factored":
        arr = h5io.read(path, ["x_eval", "x_train", "a", "b"])
        return InputJacobian(
            form=form,
            x_eval=_flat64(arr["x_eval"]),
            x_train=_flat64(arr["x_train"]),
            a=arr["a"],
            b=arr["b"],
        )
    if form == "dense" and storage == "implicit":
        arr = h5io.read(path, ["x_eval", "x_train"])
        if kernel_fn is None:
            from ntkadv.kernels.analytic import kernel_fn_from_spec

            kernel_fn = kernel_fn_from_spec(attrs["arch_spec"])
        return ImplicitJacobian(
            kernel_fn=kernel_fn,
            x_eval=arr["x_eval"],
            x_train=arr["x_train"],
            input_shape=tuple(int(s) for s in attrs["input_shape"]),
            block_size=int(attrs["block_size"]),
        )
    raise ValueError(
        f"{path}: unknown Jacobian cache (form {form!r}, storage {storage!r}); "
        "delete it and rerun compute_ntk_input_jacobian"
    )
