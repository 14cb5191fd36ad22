"""Matrix-free NTK predictor f_t (supp. Eq. 3) for Gram matrices too large to hold.

Supp. App. C trains on all 60,000 MNIST images; a 60k x 60k float64 Gram is 28.8 GB
and its dense eigendecomposition (`ntkadv.spectra.eigh`) ~5 h and > 57 GB. Here
only products Θ(X, X) V with (n, k) blocks V are needed:

* `KernelMatvec`: Θ V computed block by block from the kernel function (one jitted
  (b, b) kernel block, only blocks on and above the diagonal; memory O(b·(b + k))
  plus the inputs).
* `GramMatvec`: Θ V streamed from a Gram stored on disk (an h5py dataset or any
  array-like), `block_rows` rows at a time (memory O(block_rows·n)).
* `kernel_matmul`: the rectangular Θ(x_eval, X) C (f_t at many points) the same
  way, block by block, never the (m, n) kernel.

The transfer reference of supp. App. C (rule compute_transfer_reference with
``transfer.solver: iterative``) uses `KernelMatvec`: at n = 60,000 it recomputes
the Gram's 1.8e9 upper-triangle entries on every matvec instead of writing and
re-reading a 28.8 GB file (docs/paper_scale.md, "App. C at 60k").

Solvers (every column of Y shares one blocked matvec per iteration):

* `solve_pcg`: t = ∞, kernel regression c_∞ = Θ⁻¹ Y (supp. Eq. 11) by
  Jacobi-preconditioned conjugate gradients on all k columns at once; stops when
  every column's relative residual ‖y − Θ c‖ / ‖y‖ <= tol, i.e. f_∞ on the training
  points is within tol of Y.
* `block_lanczos`/`KrylovPhi`: c_t = φ_t(Θ) Y with φ_t(λ) = (1 − e^{−ηλt}) / λ
  (supp. Eq. 3) from one block Krylov basis Q (n, m·k) started at Y (full
  reorthogonalisation): c_t ≈ Q φ_t(T) E₁ R₀ with T = Qᵀ Θ Q block tridiagonal.
  The basis is grown until the Krylov coefficients of every time t of the grid
  change by <= tol (relative, Frobenius) between successive checks; after that any
  t is evaluated from the same basis (eigh of the small T, no further matvecs).

Shapes: X (n, *input_shape), Y (n, k), coefficients (n, k); float64 NumPy out.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ntkadv.typing import KernelFn

#: Largest block a matvec may allocate (bytes): the guard against an n x n array.
MAX_BLOCK_BYTES = 512 * 2**20
#: Default rows and columns of one kernel block (8 MB in float64): per kernel entry
#: as fast as larger blocks (twolayer NTK on MNIST, one core; benchmarks/bench_appc.py).
BLOCK_SIZE = 1000
#: A `KernelMatvec` with a logger reports a matvec at INFO when it took at least this
#: many seconds (a 60k one takes minutes; small ones go to DEBUG).
MATVEC_LOG_S = 10.0

Matvec = Callable[[np.ndarray], np.ndarray]


def _starts(n: int, size: int) -> list[tuple[int, int]]:
    if size < 1:
        raise ValueError(f"block size must be >= 1, got {size}")
    return [(i, min(i + size, n)) for i in range(0, n, size)]


def _pad(x: np.ndarray, size: int) -> np.ndarray:
    short = size - x.shape[0]
    if short == 0:
        return x
    return np.concatenate([x, np.repeat(x[-1:], short, axis=0)], axis=0)


def _as_block(v: np.ndarray, n: int) -> tuple[np.ndarray, bool]:
    v = np.asarray(v, dtype=np.float64)
    vector = v.ndim == 1
    v = v[:, None] if vector else v
    if v.ndim != 2 or v.shape[0] != n:
        raise ValueError(f"matvec input has shape {v.shape}, expected ({n}, k)")
    return v, vector


class KernelMatvec:
    """V (n, k) -> Θ(X, X) V (n, k), evaluated from the kernel function block by block.

    Only the (b, b) blocks on and above the diagonal are computed (Θ symmetric): block
    (i, j) contributes K_ij V_j to rows i and K_ijᵀ V_i to rows j. The block function
    is jitted once; the last, shorter block is padded (repeated inputs, zero V rows).

    Args:
        kernel_fn: kernel_fn(a (b, *shape), c (b, *shape)) -> (b, b).
        x: (n, *shape) training inputs.
        block_size: b; b·b·8 bytes must be <= `max_block_bytes`.
        max_block_bytes: size guard (no n x n array unless explicitly allowed).
        log: the job's logger: one line per matvec (its count, n, columns and
            seconds), at INFO from `MATVEC_LOG_S` seconds, so that a solver of an
            hour (App. C at n = 60,000) shows its progress; None: silent.
    """

    def __init__(
        self,
        kernel_fn: KernelFn,
        x: np.ndarray | jax.Array,
        block_size: int = BLOCK_SIZE,
        max_block_bytes: int = MAX_BLOCK_BYTES,
        log: logging.Logger | None = None,
    ) -> None:
        self.log = log
        x = np.asarray(x)
        self.n = int(x.shape[0])
        self.block_size = b = min(int(block_size), self.n)
        if b * b * 8 > max_block_bytes:
            raise ValueError(
                f"block_size {b}: a {b}x{b} float64 block exceeds {max_block_bytes} B"
            )
        self.blocks = [
            (i0, i1, jnp.asarray(_pad(x[i0:i1], b))) for i0, i1 in _starts(self.n, b)
        ]
        self.n_matvecs = 0

        def pair(xi, xj, vi, vj):
            k = kernel_fn(xi, xj)
            return k @ vj, k.T @ vi

        def diag_block(xi, vi):
            return kernel_fn(xi, xi) @ vi

        self._pair = jax.jit(pair)
        self._diag_block = jax.jit(diag_block)
        self._kdiag = jax.jit(lambda xi: jnp.diagonal(kernel_fn(xi, xi)))

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n, self.n)

    def diagonal(self) -> np.ndarray:
        """diag Θ(X, X), (n,) float64 (one diagonal block per row block)."""
        return np.concatenate(
            [
                np.asarray(self._kdiag(xb), np.float64)[: i1 - i0]
                for i0, i1, xb in self.blocks
            ]
        )

    def __call__(self, v: np.ndarray) -> np.ndarray:
        start = time.monotonic()
        v, vector = _as_block(v, self.n)
        b, k = self.block_size, v.shape[1]
        out = np.zeros((self.n, k))
        vp = [np.zeros((b, k)) for _ in self.blocks]
        for vb, (i0, i1, _) in zip(vp, self.blocks, strict=True):
            vb[: i1 - i0] = v[i0:i1]
        dtype = self.blocks[0][2].dtype
        vj_ = [jnp.asarray(vb, dtype) for vb in vp]
        for i, (i0, i1, xi) in enumerate(self.blocks):
            out[i0:i1] += np.asarray(self._diag_block(xi, vj_[i]))[: i1 - i0]
            for j in range(i + 1, len(self.blocks)):
                j0, j1, xj = self.blocks[j]
                a, c = self._pair(xi, xj, vj_[i], vj_[j])
                out[i0:i1] += np.asarray(a)[: i1 - i0]
                out[j0:j1] += np.asarray(c)[: j1 - j0]
        self.n_matvecs += 1
        if self.log is not None:
            secs = time.monotonic() - start
            level = logging.INFO if secs >= MATVEC_LOG_S else logging.DEBUG
            self.log.log(
                level,
                "kernel matvec %d (n = %d, %d columns): %.1f s",
                self.n_matvecs,
                self.n,
                k,
                secs,
            )
        return out[:, 0] if vector else out


def kernel_matmul(
    kernel_fn: KernelFn,
    x_eval: np.ndarray | jax.Array,
    x_train: np.ndarray | jax.Array,
    c: np.ndarray,
    block_size: int = BLOCK_SIZE,
) -> np.ndarray:
    """Θ(x_eval, X) C (m, k) without the (m, n) kernel: f(x) = Θ(x, X) c of supp.
    Eq. 3 at many points, accumulated over (b, b) kernel blocks.

    Each block is computed in the inputs' dtype (as ``kernel_fn(x_eval, X)`` would
    be), cast to float64 and multiplied by the float64 C rows of its columns; the
    last, shorter blocks are padded (repeated inputs, zero C rows), so one shape is
    compiled. Memory O(b·(b + k)) besides the inputs and the (m, k) result.

    Args:
        kernel_fn: kernel_fn(a (b, *shape), c (b, *shape)) -> (b, b).
        x_eval: (m, *shape) evaluation points.
        x_train: (n, *shape) training points (x_eval is cast to their dtype).
        c: (n, k) coefficients (or (n,)).
        block_size: b, rows and columns per kernel block.

    Returns:
        (m, k) float64 (or (m,) for 1-D c).
    """
    x_train = np.asarray(x_train)
    x_eval = np.asarray(x_eval, dtype=x_train.dtype)
    n, m = x_train.shape[0], x_eval.shape[0]
    c2, vector = _as_block(c, n)
    rows, cols = min(block_size, max(m, 1)), min(block_size, n)
    fn = _block_matmul(kernel_fn)
    col_blocks = []
    for j0, j1 in _starts(n, cols):
        cb = np.zeros((cols, c2.shape[1]))
        cb[: j1 - j0] = c2[j0:j1]
        col_blocks.append((jnp.asarray(_pad(x_train[j0:j1], cols)), jnp.asarray(cb)))
    out = np.zeros((m, c2.shape[1]))
    for i0, i1 in _starts(m, rows) if m else []:
        xe = jnp.asarray(_pad(x_eval[i0:i1], rows))
        for xt, cb in col_blocks:
            out[i0:i1] += np.asarray(fn(xe, xt, cb))[: i1 - i0]
    return out[:, 0] if vector else out


@functools.lru_cache(maxsize=8)
def _block_matmul(kernel_fn: KernelFn) -> Callable:
    """Jitted (x_eval block, x_train block, C block) -> float64 K_block C_block,
    cached per kernel so repeated calls do not recompile."""

    def block(xe: jax.Array, xt: jax.Array, cb: jax.Array) -> jax.Array:
        return kernel_fn(xe, xt).astype(cb.dtype) @ cb

    return jax.jit(block)


class GramMatvec:
    """V (n, k) -> Θ V streamed from a stored Gram, `block_rows` rows at a time.

    Args:
        gram: (n, n) array-like with row slicing (h5py dataset, np.memmap, array),
            float32 or float64 (products are accumulated in float64).
        block_rows: rows read per step; block_rows·n·8 bytes must be <=
            `max_block_bytes` (best a multiple of the dataset's chunk rows).
        n: use the leading (n, n) block Θ of the first n points (None: all).
    """

    def __init__(
        self,
        gram: Any,
        block_rows: int = 256,
        max_block_bytes: int = MAX_BLOCK_BYTES,
        n: int | None = None,
    ) -> None:
        rows, cols = gram.shape
        if rows != cols:
            raise ValueError(f"Gram must be square, got shape {gram.shape}")
        if n is not None and not 1 <= n <= rows:
            raise ValueError(f"n = {n}: the Gram has {rows} points")
        self.gram, self.n = gram, int(rows if n is None else n)
        self.block_rows = min(int(block_rows), self.n)
        if self.block_rows * self.n * 8 > max_block_bytes:
            raise ValueError(
                f"block_rows {self.block_rows}: a {self.block_rows}x{n} block exceeds "
                f"{max_block_bytes} B"
            )
        self.n_matvecs = 0

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n, self.n)

    def diagonal(self) -> np.ndarray:
        """diag Θ, (n,) float64 (one pass over the row blocks)."""
        return np.concatenate(
            [
                np.diagonal(np.asarray(self.gram[i0:i1, i0:i1], np.float64))
                for i0, i1 in _starts(self.n, self.block_rows)
            ]
        )

    def __call__(self, v: np.ndarray) -> np.ndarray:
        v, vector = _as_block(v, self.n)
        out = np.empty((self.n, v.shape[1]))
        for i0, i1 in _starts(self.n, self.block_rows):
            out[i0:i1] = np.asarray(self.gram[i0:i1, : self.n], np.float64) @ v
        self.n_matvecs += 1
        return out[:, 0] if vector else out


def as_linear_operator(matvec: Any):
    """A scipy.sparse.linalg.LinearOperator of a `KernelMatvec` / `GramMatvec`."""
    from scipy.sparse.linalg import LinearOperator

    return LinearOperator(
        matvec.shape, matvec=matvec, matmat=matvec, rmatvec=matvec, dtype=np.float64
    )


class SolveInfo(NamedTuple):
    """Convergence record: iterations (blocked matvecs), final relative residuals."""

    iterations: int
    residuals: np.ndarray
    converged: bool


def solve_pcg(
    matvec: Matvec,
    y: np.ndarray,
    tol: float = 1e-6,
    maxiter: int = 10_000,
    diagonal: np.ndarray | None = None,
) -> tuple[np.ndarray, SolveInfo]:
    """c_∞ = Θ⁻¹ Y (supp. Eq. 11) by Jacobi-preconditioned CG on all k columns at once.

    Each iteration is one blocked matvec Θ P (n, k); the columns run independent CG
    recurrences (their own step sizes), a column stops updating once its relative
    residual ‖y_r − Θ c_r‖ / ‖y_r‖ <= tol.

    Args:
        matvec: V (n, k) -> Θ V.
        y: (n, k) targets (a (n,) vector is treated as k = 1).
        tol: relative residual per column.
        maxiter: most iterations.
        diagonal: (n,) diag Θ for the Jacobi preconditioner (None: no preconditioner).

    Returns:
        (c (n, k) float64, SolveInfo); the residuals are recomputed from the
        recurrence (the true residual agrees to round-off at these tolerances).
    """
    y, vector = _as_block(y, np.shape(y)[0])
    if tol <= 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    d = np.ones(y.shape[0]) if diagonal is None else np.asarray(diagonal, np.float64)
    if d.shape != (y.shape[0],) or not np.all(np.isfinite(d)) or np.any(d <= 0):
        raise ValueError("diagonal of Θ must be (n,), finite and positive (Jacobi)")
    inv_d = 1.0 / d[:, None]
    ynorm = np.linalg.norm(y, axis=0)
    ynorm[ynorm == 0] = 1.0
    c = np.zeros_like(y)
    r = y.copy()
    z = inv_d * r
    p = z.copy()
    rz = np.sum(r * z, axis=0)
    res = np.linalg.norm(r, axis=0) / ynorm
    it = 0
    while it < maxiter and np.any(res > tol):
        active = res > tol
        q = matvec(p)
        it += 1
        pq = np.sum(p * q, axis=0)
        alpha = np.where(active, rz / np.where(pq > 0, pq, 1.0), 0.0)
        c += alpha * p
        r -= alpha * q
        z = inv_d * r
        rz_new = np.sum(r * z, axis=0)
        beta = np.where(active, rz_new / np.where(rz != 0, rz, 1.0), 0.0)
        p = z + beta * p
        rz = rz_new
        res = np.linalg.norm(r, axis=0) / ynorm
    info = SolveInfo(it, res, bool(np.all(res <= tol)))
    return (c[:, 0] if vector else c), info


def phi(eigvals: np.ndarray, t: float, lr: float) -> np.ndarray:
    """φ_t(λ) = (1 − e^{−ηλt}) / λ (1/λ at t = ∞), supp. Eq. 3; needs λ > 0."""
    lam = np.asarray(eigvals, np.float64)
    if t < 0 or lr <= 0:
        raise ValueError(f"need t >= 0 and lr > 0, got t={t}, lr={lr}")
    if math.isinf(t):
        return 1.0 / lam
    return -np.expm1(-lr * lam * t) / lam


class KrylovPhi(NamedTuple):
    """A block Krylov basis of Θ started at Y, for c_t = φ_t(Θ) Y at any t.

    Attributes:
        basis: (n, m) orthonormal Krylov basis Q (m = blocks·k, fewer on deflation).
        ritz_values: (m,) eigenvalues θ of T = Qᵀ Θ Q (ascending, clipped > 0).
        ritz_vectors: (m, m) eigenvectors S of T.
        proj: (m, k) Qᵀ Y (= E₁ R₀).
        lr: learning rate η.
        info: iterations (blocked matvecs) and the last relative changes per time.
    """

    basis: np.ndarray
    ritz_values: np.ndarray
    ritz_vectors: np.ndarray
    proj: np.ndarray
    lr: float
    info: SolveInfo

    def krylov_coefficients(self, t: float) -> np.ndarray:
        """φ_t(T) Qᵀ Y, (m, k)."""
        s = self.ritz_vectors
        return s @ (phi(self.ritz_values, t, self.lr)[:, None] * (s.T @ self.proj))

    def coefficients(self, t: float) -> np.ndarray:
        """c_t ≈ Q φ_t(T) Qᵀ Y, (n, k) float64, f_t(x) = Θ(x, X) c_t."""
        return self.basis @ self.krylov_coefficients(t)

    @property
    def eigval_max(self) -> float:
        """Largest Ritz value (→ λ_max(Θ) from below; converges first)."""
        return float(self.ritz_values[-1])


def _small_eigh(t_mat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w, s = np.linalg.eigh((t_mat + t_mat.T) / 2)
    floor = max(w.shape[0] * np.finfo(np.float64).eps * max(w[-1], 0.0), 1e-300)
    return np.maximum(w, floor), s


def block_lanczos(
    matvec: Matvec,
    y: np.ndarray,
    times: Sequence[float],
    lr: float,
    tol: float = 1e-6,
    max_blocks: int = 500,
    check_every: int = 5,
) -> KrylovPhi:
    """One block Krylov basis K_m(Θ, Y) for c_t = φ_t(Θ) Y at every t of `times`.

    Block Lanczos with full reorthogonalisation (twice, classical Gram-Schmidt):
    Q₁R₀ = Y, W = Θ Q_j − Q_j A_j − Q_{j−1} B_{j−1}ᵀ, Q_{j+1} B_j = W. Every
    `check_every` blocks T = QᵀΘQ is eigendecomposed and φ_t(T) Qᵀ Y computed for
    every t; the basis is final once each changes by <= tol (relative, Frobenius)
    since the previous check, or the Krylov space is invariant (exact result).

    Args:
        matvec: V (n, k) -> Θ V.
        y: (n, k) targets.
        times: training times of the convergence check (``math.inf`` allowed; it
            needs as many blocks as unpreconditioned CG).
        lr: learning rate η.
        tol: relative change of the Krylov coefficients at which to stop.
        max_blocks: most blocks (basis memory n·max_blocks·k·8 bytes).
        check_every: blocks between convergence checks.

    Returns:
        `KrylovPhi`; info.converged is False if max_blocks was reached.
    """
    y, _ = _as_block(y, np.shape(y)[0])
    n, k = y.shape
    if lr <= 0 or tol <= 0:
        raise ValueError(f"need lr > 0 and tol > 0, got lr={lr}, tol={tol}")
    q1, r0 = np.linalg.qr(y)
    scale = max(float(np.abs(r0).max()), np.finfo(np.float64).tiny)
    keep = np.abs(np.diag(r0)) > 1e-12 * scale
    q1 = q1[:, keep]
    basis = [q1]
    diag_blocks: list[np.ndarray] = []
    off_blocks: list[np.ndarray] = []
    prev: list[np.ndarray] | None = None
    change = np.full(len(times), np.inf)
    it = 0
    while it < max_blocks:
        qj = basis[-1]
        w = matvec(qj)
        it += 1
        a = qj.T @ w
        diag_blocks.append((a + a.T) / 2)
        q_all = np.concatenate(basis, axis=1)
        for _ in range(2):
            w -= q_all @ (q_all.T @ w)
        q_next, b = np.linalg.qr(w)
        # deflation: drop directions already (numerically) in the Krylov space
        anorm = max(float(np.abs(a).max()), float(np.abs(b).max()), scale)
        keep = np.abs(np.diag(b)) > 1e-10 * anorm
        invariant = not np.any(keep)
        check = invariant or it % check_every == 0 or it == max_blocks
        if check:
            m = q_all.shape[1]
            t_mat = _tridiag(diag_blocks, off_blocks, m)
            w_t, s_t = _small_eigh(t_mat)
            proj = q_all.T @ y
            cur = [s_t @ (phi(w_t, t, lr)[:, None] * (s_t.T @ proj)) for t in times]
            if prev is not None:
                change = np.array(
                    [
                        np.linalg.norm(c[: p.shape[0]] - p)
                        + np.linalg.norm(c[p.shape[0] :])
                        for c, p in zip(cur, prev, strict=True)
                    ]
                ) / np.maximum([np.linalg.norm(c) for c in cur], 1e-300)
            prev = cur
            if invariant or np.all(change <= tol):
                return KrylovPhi(
                    q_all, w_t, s_t, proj, float(lr), SolveInfo(it, change, True)
                )
        if invariant:
            break
        off_blocks.append(b[keep])
        basis.append(q_next[:, keep])
    q_all = np.concatenate(basis[:-1] if len(basis) > len(diag_blocks) else basis, 1)
    t_mat = _tridiag(diag_blocks, off_blocks[: len(diag_blocks) - 1], q_all.shape[1])
    w_t, s_t = _small_eigh(t_mat)
    return KrylovPhi(
        q_all, w_t, s_t, q_all.T @ y, float(lr), SolveInfo(it, change, False)
    )


def _tridiag(
    diag_blocks: Sequence[np.ndarray], off_blocks: Sequence[np.ndarray], m: int
) -> np.ndarray:
    """Assemble the block tridiagonal T (m, m) from A_j (diagonal) and B_j (below)."""
    t_mat = np.zeros((m, m))
    i = 0
    for j, a in enumerate(diag_blocks):
        s = a.shape[0]
        t_mat[i : i + s, i : i + s] = a
        if j < len(off_blocks) and j + 1 < len(diag_blocks):
            b = off_blocks[j]  # (s_next, s)
            t_mat[i + s : i + s + b.shape[0], i : i + s] = b
            t_mat[i : i + s, i + s : i + s + b.shape[0]] = b.T
        i += s
    return t_mat


class IterativePredictor:
    """c_t = φ_t(Θ) Y (supp. Eq. 3) without Θ in memory: `block_lanczos` for finite t,
    `solve_pcg` (computed on first use) for t = ∞.

    Drop-in for `ntkadv.spectra.predictor.coefficients` in the NTK reference:
    f_t(x) = Θ(x, X) c_t needs only c_t.

    Args:
        matvec: `KernelMatvec` or `GramMatvec` (anything with ``__call__`` and
            ``diagonal()``) of Θ(X, X) (n, n).
        y: (n, k) targets.
        times: training times the Krylov basis must resolve to `tol` (other finite
            times are evaluated from the same basis); ``math.inf`` among them runs
            the CG now, else on the first request for t = ∞.
        lr: learning rate η.
        tol: relative change of c_t (finite t) / relative residual (t = ∞).
        max_blocks: most Krylov blocks; not converging by then is an error.
        maxiter: most CG iterations at t = ∞.

    Raises:
        RuntimeError: a solver did not reach `tol`.
    """

    def __init__(
        self,
        matvec: Any,
        y: np.ndarray,
        times: Sequence[float],
        lr: float,
        tol: float = 1e-6,
        max_blocks: int = 500,
        maxiter: int = 10_000,
    ) -> None:
        self.matvec, self.y, self.lr, self.tol = matvec, np.asarray(y), lr, tol
        self.maxiter = maxiter
        finite = sorted({float(t) for t in times if not math.isinf(t)})
        if not finite:
            finite = [1.0 / lr]
        self.krylov = block_lanczos(matvec, y, finite, lr, tol, max_blocks)
        if not self.krylov.info.converged:
            raise RuntimeError(
                f"block Lanczos: c_t changed by {self.krylov.info.residuals.max():.2g} "
                f"> tol {tol} after {max_blocks} blocks; raise max_blocks or tol"
            )
        self._c_inf: np.ndarray | None = None
        self.inf_info: SolveInfo | None = None
        if any(math.isinf(t) for t in times):
            self.coefficients(math.inf)  # while the matvec's source is open

    @property
    def eigval_max(self) -> float:
        """λ_max(Θ) from the top Ritz value."""
        return self.krylov.eigval_max

    def coefficients(self, t: float) -> np.ndarray:
        """c_t (n, k) float64, f_t(x) = Θ(x, X) c_t."""
        if not math.isinf(t):
            return self.krylov.coefficients(t)
        if self._c_inf is None:
            c, info = solve_pcg(
                self.matvec,
                self.y,
                self.tol,
                self.maxiter,
                diagonal=self.matvec.diagonal(),
            )
            if not info.converged:
                raise RuntimeError(
                    f"CG at t = inf: residual {info.residuals.max():.2g} > tol "
                    f"{self.tol} after {info.iterations} iterations"
                )
            self._c_inf, self.inf_info = c, info
        return self._c_inf
