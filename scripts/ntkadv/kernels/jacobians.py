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
* ``dense`` (conv and myrtle families): D stored as (m, n, d) float32, chunked per
  evaluation point, from vmapped per-pair gradients computed tile by tile.

Convention at x = x_j (and x ∥ x_j): the kernels have a cone-shaped kink in the
angle there; the gradient returned is the one with zero angular part (what
neural-tangents' safe sqrt and `kernels.twolayer_ntk` return, and what central
differences measure).

File I/O: `write_input_jacobian` goes through `h5io.atomic_h5`; the dense form of
`load_input_jacobian` streams chunks of the stored dataset with h5py (it cannot fit
in memory at paper scale), which is the one place outside `h5io` that reads a file.
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

_STREAM_BYTES = 2**26  # dense rows read per contraction step (~64 MB of float32)


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


@dataclasses.dataclass(frozen=True, eq=False)
class InputJacobian:
    """D(x_i) = ∂Θ(x_i, X_train)/∂x_i for m evaluation points, in one of two forms.

    Attributes:
        form: 'factored' (a, b set) or 'dense' (`dense` array or `path` set).
        x_eval: (m, d) flattened evaluation points.
        x_train: (n, d) flattened training points.
        a, b: (m, n) float64 coefficients, ∇ₓΘ(x_i, x_j) = a_ij x_i + b_ij x_j.
        dense: (m, n, d) Jacobian in memory (dense form), or None.
        path: HDF5 file whose 'jacobian' dataset holds D (dense form on disk).
        row_offset: first stored row of the dense form on disk (see `eval_subset`).
        train_stop: number of stored training columns used by the dense form (see
            `train_subset`); None = all.

    Use `eval_subset` / `train_subset` for restrictions; do not rebuild the object
    from its fields.
    """

    form: Form
    x_eval: np.ndarray
    x_train: np.ndarray
    a: np.ndarray | None = None
    b: np.ndarray | None = None
    dense: np.ndarray | None = None
    path: str | None = None
    row_offset: int = 0
    train_stop: int | None = None

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

    def eval_subset(self, i0: int, i1: int) -> InputJacobian:
        """The cache restricted to evaluation points i0:i1 (nothing is copied)."""
        if not 0 <= i0 <= i1 <= self.m:
            raise ValueError(f"rows {i0}:{i1} outside the {self.m} cached points")
        if self.form == "factored":
            return dataclasses.replace(
                self, x_eval=self.x_eval[i0:i1], a=self.a[i0:i1], b=self.b[i0:i1]
            )
        dense = None if self.dense is None else self.dense[i0:i1]
        return dataclasses.replace(
            self,
            x_eval=self.x_eval[i0:i1],
            dense=dense,
            row_offset=self.row_offset + (i0 if dense is None else 0),
        )

    def train_subset(self, n: int) -> InputJacobian:
        """The cache over the first `n` training points only (supp. App. C subsets)."""
        if not 0 < n <= self.n:
            raise ValueError(f"n={n} outside 1..{self.n} cached training points")
        if n == self.n:
            return self
        if self.form == "factored":
            return dataclasses.replace(
                self, x_train=self.x_train[:n], a=self.a[:, :n], b=self.b[:, :n]
            )
        dense = None if self.dense is None else self.dense[:, :n]
        stop = None if dense is not None else n
        return dataclasses.replace(
            self, x_train=self.x_train[:n], dense=dense, train_stop=stop
        )

    def _dense_rows(self) -> Iterator[tuple[int, int, np.ndarray]]:
        step = max(1, _STREAM_BYTES // (4 * self.n * self.d))
        if self.dense is not None:
            for i0, i1 in block_starts(self.m, step):
                yield i0, i1, self.dense[i0:i1]
            return
        off, cols = self.row_offset, slice(0, self.train_stop)
        with h5io.open_read(self.path) as f:
            data = f["jacobian"]
            for i0, i1 in block_starts(self.m, step):
                yield i0, i1, data[off + i0 : off + i1, cols]

    def rows(self, i0: int, i1: int) -> np.ndarray:
        """Dense block D[i0:i1] of shape (i1 − i0, n, d), float64 (materialised)."""
        if self.form == "factored":
            xe = self.x_eval[i0:i1]
            return (
                self.a[i0:i1, :, None] * xe[:, None, :]
                + self.b[i0:i1, :, None] * self.x_train[None, :, :]
            )
        if self.dense is not None:
            return np.asarray(self.dense[i0:i1], dtype=np.float64)
        off, cols = self.row_offset, slice(0, self.train_stop)
        with h5io.open_read(self.path) as f:
            return np.asarray(f["jacobian"][off + i0 : off + i1, cols], np.float64)

    def contract(self, c: np.ndarray) -> np.ndarray:
        """∇ₓ Σ_j Θ(x_i, x_j) c_jk for every evaluation point (supp. Eq. 9: D(x)ᵀ c).

        Args:
            c: (n, K) coefficients (or (n,)).

        Returns:
            (m, d, K) float64 (or (m, d) for 1-D c); d in x.reshape(m, -1) order.
        """
        c = np.asarray(c, dtype=np.float64)
        vector = c.ndim == 1
        c2 = c[:, None] if vector else c
        if c2.shape[0] != self.n or c2.ndim != 2:
            raise ValueError(f"c must be (n={self.n}, K), got {c.shape}")
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
            for i0, i1, block in self._dense_rows():
                out[i0:i1] = np.swapaxes(block, 1, 2).astype(np.float64) @ c2
        return out[:, :, 0] if vector else out


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

    Datasets: `x_eval` (m, d), `x_train` (n, d) (input dtype), and `a`, `b`
    (m, n) float64 (factored) or `jacobian` (m, n, d) float32 chunked (1, n, d)
    (dense). Attrs: `attrs` plus form, m, n, d and wall_time_s (compute + write).

    Raises:
        FloatingPointError: if a block has non-finite entries (nothing is written).
    """
    start = time.perf_counter()
    xe, xt = np.asarray(x_eval), np.asarray(x_train)
    m, n, d = xe.shape[0], xt.shape[0], int(np.prod(xe.shape[1:]))
    meta = {**(attrs or {}), "form": form, "m": m, "n": n, "d": d}
    size = m * n * (16 if form == "factored" else 4 * d) + (m + n) * d * xe.itemsize
    with h5io.atomic_h5(path, meta, expected_bytes=size) as f:
        f.create_dataset("x_eval", data=xe.reshape(m, d))
        f.create_dataset("x_train", data=xt.reshape(n, d))
        if form == "factored":
            dsets = {k: f.create_dataset(k, (m, n), dtype=np.float64) for k in "ab"}
        else:
            dsets = {
                "jacobian": f.create_dataset(
                    "jacobian", (m, n, d), dtype=np.float32, chunks=(1, n, d)
                )
            }
        for i0, i1, arrays in iter_input_jacobian_blocks(
            kernel_fn, form, x_eval, x_train, block_size
        ):
            for key, value in arrays.items():
                if not np.all(np.isfinite(value)):
                    raise FloatingPointError(f"non-finite {key} for rows {i0}:{i1}")
                dsets[key][i0:i1] = value.astype(dsets[key].dtype)
            if progress is not None:
                progress(i1 - i0)
        f.attrs["wall_time_s"] = time.perf_counter() - start


def load_input_jacobian(path: str | os.PathLike) -> InputJacobian:
    """Open a Jacobian cache written by `write_input_jacobian`.

    The factored form is read into memory; the dense form stays on disk and
    `contract` streams it in chunks of evaluation points.
    """
    attrs = h5io.read_attrs(path)
    form = attrs["form"]
    if form == "factored":
        arr = h5io.read(path, ["x_eval", "x_train", "a", "b"])
        return InputJacobian(
            form=form,
            x_eval=_flat64(arr["x_eval"]),
            x_train=_flat64(arr["x_train"]),
            a=arr["a"],
            b=arr["b"],
        )
    if form == "dense":
        arr = h5io.read(path, ["x_eval", "x_train"])
        return InputJacobian(
            form=form,
            x_eval=_flat64(arr["x_eval"]),
            x_train=_flat64(arr["x_train"]),
            path=str(path),
        )
    raise ValueError(f"{path}: unknown Jacobian form {form!r}")
