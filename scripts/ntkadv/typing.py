"""Shared type aliases and protocols of the library (one definition each).

Shapes follow the docstrings of the modules that use them: n training points, m
evaluation points, d flattened input dimension, k outputs, K coefficient columns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol

import numpy as np

#: Binary (k = 1, targets ±1) or multiclass (one-hot targets).
Task = Literal["binary", "multiclass"]
#: Storage form of an input-Jacobian cache (`ntkadv.kernels.jacobians`).
Form = Literal["factored", "dense"]
#: Training regime of the kernel-dynamics study (supp. App. E).
Regime = Literal["standard", "fgsm", "pgd"]
#: Inputs of the tracked empirical NTK: clean images or their PGD versions.
KernelInputs = Literal["clean", "pgd"]
#: Analytic kernel: kernel_fn(x1 (n1, *shape), x2 (n2, *shape)) -> (n1, n2).
KernelFn = Callable[[Any, Any], Any]
#: x (p, d) flattened -> Θ(x, X_train) (p, n).
KernelRowsFn = Callable[[np.ndarray], np.ndarray]
#: c (n, K) -> D(x)ᵀ c (m, d, K) at the cached evaluation points (supp. Eq. 9).
ContractFn = Callable[[np.ndarray], np.ndarray]
#: Network apply function f(params, x (n, H, W, C)) -> (n, k) logits.
ApplyFn = Callable[[Any, Any], Any]


class Contractible(Protocol):
    """Anything with the input-Jacobian contraction c (n, K) -> (m, d, K)."""

    def contract(self, c: np.ndarray) -> np.ndarray: ...
