"""The NTK predictor f_t after gradient-flow training for time t (supp. Eq. 3, 9).

f_t(x) = Θ(x, X) Θ(X, X)⁻¹ (I − e^{−η Θ(X, X) t}) Y
       = Θ(x, X) V diag((1 − e^{−η λ t}) / λ) Vᵀ Y =: Θ(x, X) c_t,

with learning rate η (`lr`), training time t (t = ∞ gives kernel regression
f_∞ = Θ(x, X) Θ⁻¹ Y, supp. Eq. 11/31) and f_0 = 0 (the NTK predictor ignores the
initial network output, supp. App. C). A k-output network's NTK is Θ ⊗ I_k, so Y
is (n, k) and every output shares the scalar kernel.

Input gradient (supp. Eq. 9): ∇ₓ f_{t,r}(x) = DΘ(x, X)ᵀ c_t[:, r], the contraction of
the input-Jacobian cache with c_t (`InputJacobian.contract` of
`ntkadv.kernels.jacobians`); the autodiff route through `kernel_fn` is
`input_gradient_fn`.

Coefficients are computed in float64 NumPy; `predict` and the `*_fn` factories are
pure and jittable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ntkadv.spectra.eigh import Spectrum
from ntkadv.typing import KernelFn


def time_weights(eigvals: np.ndarray, t: float, lr: float) -> np.ndarray:
    """Spectral filter w_i = (1 − exp(−lr·λ_i·t)) / λ_i of f_t (supp. Eq. 3).

    Args:
        eigvals: (n,) positive eigenvalues λ of Θ(X, X).
        t: training time, >= 0; ``math.inf`` gives 1/λ (kernel regression).
        lr: learning rate η > 0.

    Returns:
        (n,) float64 weights; exactly 0 at t = 0 (computed with ``expm1`` so that small
        lr·λ·t keeps full relative precision).
    """
    eigvals = np.asarray(eigvals, dtype=np.float64)
    if t < 0 or lr <= 0:
        raise ValueError(f"need t >= 0 and lr > 0, got t={t}, lr={lr}")
    if np.isinf(t):
        return 1.0 / eigvals
    return -np.expm1(-lr * eigvals * t) / eigvals


def coefficients(
    spectrum: Spectrum | tuple[np.ndarray, np.ndarray],
    y: np.ndarray,
    t: float,
    lr: float,
) -> np.ndarray:
    """Dual coefficients c_t = V diag(w_t) Vᵀ Y, so that f_t(x) = Θ(x, X) c_t.

    Args:
        spectrum: `Spectrum` or (eigvals (n,), eigvecs (n, n)) of Θ(X, X).
        y: (n, k) training targets (±1 for binary, one-hot for multiclass).
        t: training time (``math.inf`` allowed).
        lr: learning rate.

    Returns:
        (n, k) float64 coefficients.
    """
    eigvals, eigvecs = np.asarray(spectrum[0]), np.asarray(spectrum[1])
    y = np.asarray(y, dtype=np.float64)
    w = time_weights(eigvals, t, lr)
    return eigvecs @ (w[:, None] * (eigvecs.T @ y))


def coefficients_path(
    spectrum: Spectrum | tuple[np.ndarray, np.ndarray],
    y: np.ndarray,
    ts: Sequence[float],
    lr: float,
) -> np.ndarray:
    """c_t for several times at the cost of one projection: (T, n, k)."""
    eigvals, eigvecs = np.asarray(spectrum[0]), np.asarray(spectrum[1])
    proj = eigvecs.T @ np.asarray(y, dtype=np.float64)  # (n, k)
    return np.stack(
        [eigvecs @ (time_weights(eigvals, t, lr)[:, None] * proj) for t in ts]
    )


def predict(k_x_train: jax.Array | np.ndarray, c: jax.Array | np.ndarray):
    """f_t(x) = Θ(x, X) c_t.

    Args:
        k_x_train: (m, n) kernel between evaluation points and training points.
        c: (n, k) coefficients from `coefficients`.

    Returns:
        (m, k) predictions (NumPy in, NumPy out; jax in, jax out).
    """
    return k_x_train @ c


def predictor_fn(kernel_fn: KernelFn, x_train: jax.Array, c: jax.Array) -> Callable:
    """Pure function x (m, *input_shape) -> f_t(x) (m, k) through `kernel_fn`.

    Args:
        kernel_fn: analytic NTK, kernel_fn(x1, x2) -> (n1, n2).
        x_train: (n, *input_shape) training inputs.
        c: (n, k) coefficients.
    """
    x_train = jnp.asarray(x_train)
    c = jnp.asarray(c)

    def f(x: jax.Array) -> jax.Array:
        return kernel_fn(x, x_train) @ c

    return f


def input_gradient(jacobian, c: np.ndarray) -> np.ndarray:
    """∇ₓ f_t at the cached (clean) test points, supp. Eq. 9: D(x)ᵀ c_t.

    Args:
        jacobian: an `ntkadv.kernels.jacobians.InputJacobian` (anything with
            ``contract(c (n, K)) -> (m, d, K)``).
        c: (n, k) coefficients.

    Returns:
        (m, d, k) input gradients, d = flattened input dimension.
    """
    return np.asarray(jacobian.contract(np.asarray(c)))


def input_gradient_fn(
    kernel_fn: KernelFn, x_train: jax.Array, c: jax.Array
) -> Callable:
    """Autodiff reference for Eq. 9: x (m, *shape) -> ∇ₓ f_t(x) (m, d, k).

    Uses one VJP per output through `kernel_fn` (the way the authors' notebook does it,
    with ``jax.grad``); each test point's output depends only on its own input.
    """
    f = predictor_fn(kernel_fn, x_train, c)
    k = jnp.asarray(c).shape[1]

    def grad(x: jax.Array) -> jax.Array:
        m = x.shape[0]
        _, vjp = jax.vjp(f, x)
        rows = [vjp(jnp.zeros((m, k), x.dtype).at[:, r].set(1.0))[0] for r in range(k)]
        return jnp.stack([r.reshape(m, -1) for r in rows], axis=-1)

    return grad


def time_grid(
    eigval_max: float, lr: float, tau_log10_min: float, tau_log10_max: float, num: int
) -> tuple[np.ndarray, np.ndarray]:
    """Training times on a log grid of normalised time τ = lr·λ_max·t, plus t = ∞.

    Kernels differ in scale (the two-layer kernel's λ_max is ~50x an FC kernel's), so
    the grid is set in τ: at τ = 1 the top eigenmode is (1 − 1/e) learned, mode i at
    τ ≈ λ_max/λ_i (supp. Eq. 3).

    Returns:
        (taus, times), both (num + 1,) float64 ending in inf.
    """
    taus = np.append(np.logspace(tau_log10_min, tau_log10_max, num), np.inf)
    return taus, taus / (lr * eigval_max)
