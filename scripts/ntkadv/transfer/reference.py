"""The NTK side of the transfer experiment (supp. App. C): f_t at the net's epochs.

Epoch τ of full-batch GD on the mean squared loss is NTK time t = τ / n
(`ntkadv.transfer.net.ntk_time`); the NTK quantities are width and seed independent,
so they are computed once per dataset and shared by all nets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ntkadv.attacks.closed_form import fgsm_step, perturb
from ntkadv.losses import (
    loss_input_gradient,
    loss_output_gradient,
    predictions_correct,
)
from ntkadv.spectra import eigh, iterative, predictor
from ntkadv.transfer.net import ntk_time
from ntkadv.typing import Task


class NTKReference(NamedTuple):
    """The kernel side of the comparison: f_t on the test points (supp. Eq. 3).

    Attributes:
        spectrum: eigendecomposition of Θ(X, X) over the n training points used
            (None with the iterative solver).
        y_train: (n, k) targets of those points.
        k_test_train: (b, n) Θ(x_test, X) over those points.
        lr: learning rate η of supp. Eq. 3.
        solver: matrix-free c_t (`ntkadv.spectra.iterative.IterativePredictor`),
            used instead of the spectrum when set.
    """

    spectrum: eigh.Spectrum | None
    y_train: np.ndarray
    k_test_train: np.ndarray
    lr: float
    solver: iterative.IterativePredictor | None = None

    @property
    def eigval_max(self) -> float:
        """λ_max(Θ(X, X)) (top Ritz value with the iterative solver)."""
        if self.solver is not None:
            return self.solver.eigval_max
        return float(self.spectrum.eigvals[0])

    @property
    def n_clipped(self) -> int:
        """Eigenvalues clipped by the dense eigh (0 with the iterative solver)."""
        return 0 if self.spectrum is None else int(self.spectrum.n_clipped)

    @property
    def n(self) -> int:
        """Number of training points."""
        return self.y_train.shape[0]

    def coefficients(self, t: float) -> np.ndarray:
        """c_t (n, k) with f_t(x) = Θ(x, X) c_t."""
        if self.solver is not None:
            return self.solver.coefficients(t)
        return predictor.coefficients(self.spectrum, self.y_train, t, self.lr)

    def predict(self, t: float) -> np.ndarray:
        """f_t at the test points, (b, k)."""
        return predictor.predict(self.k_test_train, self.coefficients(t))


def ntk_reference(
    k_train_train: np.ndarray | None,
    k_test_train: np.ndarray,
    y_train: np.ndarray,
    lr: float,
    n_train: int | None = None,
    spectrum: eigh.Spectrum | tuple[np.ndarray, np.ndarray] | None = None,
    solver: str = "dense",
    times: Sequence[float] = (),
    tol: float = 1e-6,
    max_blocks: int = 500,
    block_rows: int = 256,
    matvec: Any = None,
) -> NTKReference:
    """Build the NTK side, optionally on the first `n_train` cached training points.

    Args:
        k_train_train: (N, N) Gram matrix Θ(X, X) (read only when a subset is used
            or `spectrum` is None). With solver "iterative" it may be an h5py
            dataset: it is streamed in row blocks, never loaded whole.
        k_test_train: (b, N) Θ(x_test, X).
        y_train: (N, k) targets.
        lr: learning rate η.
        n_train: use the first n_train training points (None: all N; > N is
            an error).
        spectrum: precomputed spectrum of the full Gram (used when all points are
            used); the Gram of a subset is eigendecomposed here
            (`eigh.eigendecompose`).
        solver: "dense" (eigh, above) or "iterative" (matrix-free,
            `iterative.IterativePredictor` on a streamed Gram; `spectrum` unused).
        times: finite NTK times the iterative solver must resolve to `tol`.
        tol, max_blocks: tolerance and most Krylov blocks of the iterative solver.
        block_rows: Gram rows read per step by the iterative solver.
        matvec: with solver "iterative", the products Θ V over the first n points
            (`iterative.KernelMatvec`: kernel blocks recomputed from the inputs,
            nothing n x n in memory or on disk) instead of the Gram, which is then
            not read (pass None).
    """
    n_full = k_test_train.shape[1]
    n = n_full if n_train is None else int(n_train)
    if not 1 <= n <= n_full:
        raise ValueError(f"n_train = {n_train}: the kernel cache has {n_full} points")
    if solver not in ("dense", "iterative"):
        raise ValueError(f"solver must be 'dense' or 'iterative', got {solver!r}")
    y = np.asarray(y_train, dtype=np.float64)[:n]
    k_test = np.asarray(k_test_train[:, :n], dtype=np.float64)
    if solver == "iterative":
        if matvec is None and k_train_train is None:
            raise ValueError("the iterative solver needs the Gram Θ(X, X) or a matvec")
        if matvec is None:
            matvec = iterative.GramMatvec(k_train_train, block_rows, n=n)
        elif matvec.shape != (n, n):
            raise ValueError(f"matvec has shape {matvec.shape}, expected {(n, n)}")
        pred = iterative.IterativePredictor(matvec, y, times, lr, tol, max_blocks)
        return NTKReference(None, y, k_test, float(lr), pred)
    if n == n_full and spectrum is not None:
        spec = eigh.Spectrum(np.asarray(spectrum[0]), np.asarray(spectrum[1]), 0)
    else:
        spec = eigh.eigendecompose(np.asarray(k_train_train)[:n, :n])
    return NTKReference(spectrum=spec, y_train=y, k_test_train=k_test, lr=float(lr))


def ntk_transfer_reference(
    ref: NTKReference,
    jacobian: Any,
    kernel_fn: Callable[[jax.Array, jax.Array], jax.Array],
    x_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    task: Task,
    epochs: Sequence[int],
    eps: float,
    align_epoch: int | None = None,
    align_factors: Sequence[float] | None = None,
    random_signs: np.ndarray | None = None,
    block_size: int | None = None,
) -> dict[str, np.ndarray]:
    """NTK quantities at the NTK times t = epoch / n of the evaluation epochs.

    Width and seed independent, so computed once per dataset and shared by all nets.

    Args:
        ref: the NTK reference on the first n training points.
        jacobian: input-Jacobian cache of the test points (`contract(c) -> (b, d, k)`),
            over the same first n training points (`InputJacobian.train_subset`).
        kernel_fn: analytic NTK, for f_t at the perturbed points.
        x_train: (n, d) training inputs used.
        x_test: (b, d) test inputs (the cache's evaluation points).
        y_test: (b, k) test targets.
        task: "binary" or "multiclass".
        epochs: evaluation epochs.
        eps: ℓ∞ budget of the FGSM and random-sign perturbations.
        align_epoch: epoch of the hand-alignment diagnostic (`fit_time_factor`).
        align_factors: candidate factors α (default log-spaced in [0.1, 10]).
        random_signs: (b, d) ±1 directions of the random-sign control
            (`ntkadv.claims.nulls.random_signs`; default: drawn with seed 0). The
            nets use the same directions.
        block_size: None: Θ(x_adv, X) as one (2b, n) kernel and ∇ₓL from the
            per-output gradients (`jacobian.contract`); an int (the matrix-free
            reference of supp. App. C at n = 60,000): Θ(x_adv, X) c accumulated
            over kernel blocks of that size (`iterative.kernel_matmul`) and ∇ₓL
            contracted once with ∂L/∂f (`jacobian.contract_weighted`, K times
            fewer multiply-adds). Equal up to rounding.

    Returns:
        epoch (E,), t (E,), f (E, b, k) = f_t(x_test), loss_grad (E, b, d) float32 =
        ∇ₓL(f_t, y) (supp. Eqs. 5/8 with Eq. 9); correctness of f_t (E, b)
        correct_clean, and clean AND after the perturbation correct_own (its own
        FGSM examples), correct_random (x + ε·signs, clipped); their means
        acc_clean, acc_own, acc_random (E,); random_signs (b, d) int8; for the
        alignment diagnostic align_factors (A,) and align_f (A, b, k) =
        f_{α t(align_epoch)}(x_test).
    """
    from ntkadv.claims.nulls import random_signs as draw_signs

    fn = jax.jit(kernel_fn)
    x_train_j = jnp.asarray(x_train)
    x_test = np.asarray(x_test, dtype=np.float64)
    b = x_test.shape[0]
    signs = draw_signs(x_test.shape, 0) if random_signs is None else random_signs
    signs = np.asarray(signs)
    x_random = perturb(x_test, signs, eps)
    keys = ("t", "f", "loss_grad", "correct_clean", "correct_own", "correct_random")
    out: dict[str, list] = {k: [] for k in keys}
    for epoch in epochs:
        t = ntk_time(epoch, ref.n)
        c = ref.coefficients(t)
        f = predictor.predict(ref.k_test_train, c)
        grad = _loss_gradient(jacobian, c, f, y_test, task, block_size is not None)
        x_adv = np.concatenate([fgsm_step(x_test, grad, eps), x_random])
        if block_size is None:
            f_adv = np.asarray(fn(jnp.asarray(x_adv, x_train_j.dtype), x_train_j)) @ c
        else:
            f_adv = iterative.kernel_matmul(kernel_fn, x_adv, x_train, c, block_size)
        clean = predictions_correct(f, y_test, task)
        out["t"].append(t)
        out["f"].append(f)
        out["loss_grad"].append(grad.astype(np.float32))
        out["correct_clean"].append(clean)
        out["correct_own"].append(clean & predictions_correct(f_adv[:b], y_test, task))
        out["correct_random"].append(
            clean & predictions_correct(f_adv[b:], y_test, task)
        )
    result = {k: np.asarray(v) for k, v in out.items()}
    for name in ("clean", "own", "random"):
        result[f"acc_{name}"] = result[f"correct_{name}"].mean(axis=1)
    result["epoch"] = np.asarray(epochs, dtype=np.int64)
    result["random_signs"] = signs.astype(np.int8)
    if align_epoch is not None:
        factors = np.asarray(
            np.logspace(-1, 1, 161) if align_factors is None else align_factors
        )
        t_align = ntk_time(align_epoch, ref.n)
        result["align_factors"] = factors
        result["align_f"] = np.stack([ref.predict(a * t_align) for a in factors])
    return result


def _loss_gradient(
    jacobian: Any, c: np.ndarray, f: np.ndarray, y: np.ndarray, task: Task, once: bool
) -> np.ndarray:
    """∇ₓL(f_t, y) (b, d) of f_t = Θ(·, X) c (supp. Eqs. 5/8 with Eq. 9): from the
    per-output gradients (`jacobian.contract`), or with ``once`` by contracting the
    Jacobian once with ∂L/∂f (`jacobian.contract_weighted`); equal up to rounding."""
    if not once:
        return loss_input_gradient(f, jacobian.contract(c), y, task)
    g = loss_output_gradient(jnp.asarray(f), jnp.asarray(y), task, backend="jax")
    return jacobian.contract_weighted(c, np.asarray(g, dtype=np.float64))


def fit_time_factor(
    f_net: np.ndarray, factors: np.ndarray, f_ntk: np.ndarray
) -> tuple[float, float, float]:
    """Best hand alignment α: argmin_α ‖f_{α t} − f_net‖ on the test points.

    The paper aligned the nets at epoch 10³ with an NTK time by hand and scaled
    linearly (supp. App. C); α* = 1 means the analytic t = epoch / n is optimal.

    Args:
        f_net: (b, k) net outputs f − f_0 at the alignment epoch.
        factors: (A,) candidate factors α (increasing; should include 1).
        f_ntk: (A, b, k) f_{α t} for each α.

    Returns:
        (α*, relative error at α*, relative error at the α closest to 1), errors
        ‖f_{αt} − f_net‖_F / ‖f_net‖_F.
    """
    f_net = np.asarray(f_net, dtype=np.float64)
    scale = max(float(np.linalg.norm(f_net)), np.finfo(np.float64).tiny)
    errors = np.linalg.norm(
        (np.asarray(f_ntk) - f_net).reshape(len(factors), -1), axis=1
    )
    errors = errors / scale
    best = int(np.argmin(errors))
    one = int(np.argmin(np.abs(np.log(np.asarray(factors)))))
    return float(factors[best]), float(errors[best]), float(errors[one])
