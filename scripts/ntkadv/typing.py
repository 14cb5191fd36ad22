"""Shared type aliases and protocols of the library (one definition each).

Shapes follow the docstrings of the modules that use them: n training points, m
evaluation points, d flattened input dimension, k outputs, K coefficient columns.
Every alias is defined here only (tests/unit/test_typing.py); jax is named for
type checkers only (``"jax.Array"``), so the module imports without jax (the CPU
rules' env).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

if TYPE_CHECKING:
    import jax

#: Binary (k = 1, targets ±1) or multiclass (one-hot targets).
Task = Literal["binary", "multiclass"]
#: Storage form of an input-Jacobian cache (`ntkadv.kernels.jacobians`).
Form = Literal["factored", "dense"]
#: Training regime of the kernel-dynamics study (supp. App. E).
Regime = Literal["standard", "fgsm", "pgd"]
#: Inputs of the tracked empirical NTK: clean images or their PGD versions.
KernelInputs = Literal["clean", "pgd"]
#: Analytic kernel: kernel_fn(x1 (n1, *shape), x2 (n2, *shape)) -> (n1, n2).
KernelFn = Callable[["jax.Array", "jax.Array"], "jax.Array"]
#: Which analytic kernel a kernel function returns: the NTK Θ or the NNGP K.
Get = Literal["ntk", "nngp"]
#: x (p, d) flattened -> Θ(x, X_train) (p, n).
KernelRowsFn = Callable[[np.ndarray], np.ndarray]
#: c (n, K) -> D(x)ᵀ c (m, d, K) at the cached evaluation points (supp. Eq. 9).
ContractFn = Callable[[np.ndarray], np.ndarray]
#: Network apply function f(params, x (n, H, W, C)) -> (n, k) logits.
ApplyFn = Callable[[Any, "jax.Array"], "jax.Array"]
#: Empirical NTK of a network (`ntkadv.dynamics.entk.empirical_ntk_fn`):
#: entk_fn(x1 (n1, H, W, C), x2 (n2, H, W, C) or None (= x1), params)
#: -> (n1, n2, k, k).
EntkFn = Callable[["jax.Array", "jax.Array | None", Any], "jax.Array"]


class Contractible(Protocol):
    """Anything with the input-Jacobian contraction c (n, K) -> (m, d, K)."""

    def contract(self, c: np.ndarray) -> np.ndarray: ...
