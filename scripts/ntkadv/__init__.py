"""ntkadv: the library of the Tsilivis & Kempe (NeurIPS 2022) reproduction.

"What Can the Neural Tangent Kernel Tell Us About Adversarial Robustness?" Pure
JAX / NumPy math, one subpackage per stage of the paper, never a snakemake import;
file I/O goes through `ntkadv.h5io`. Importing the package imports nothing heavy:
every name below is loaded on first access.

Stages: `data` (verified MNIST / CIFAR-10 subsets), `kernels` (analytic NTKs, Gram
and input-Jacobian caches), `spectra` (eigendecomposition, the predictor f_t),
`attacks` (Sec. 3), `transfer` (Sec. 3.2), `features` (Sec. 4), `dynamics` (Sec. 5),
`claims` (the claims table), `plotting`. Shared: `losses`, `typing`, `config`,
`sizing`, `h5io`, `compat` (neural-tangents without its TensorFlow interop),
`timing` (wall time, process memory), `sources` (the files a rule script runs).

Public API (see each function's docstring)::

    kernel_fn_from_spec, ntk_gram_blocked, input_jacobian_fn, load_input_jacobian,
    eigendecompose, coefficients, predict, time_grid, pgd, attack_suite,
    score_features, proposition1_check, topr_coefficients, DynamicsRun, build_model,
    series_measures, merge_claims
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

_API = {
    "kernel_fn_from_spec": "ntkadv.kernels.analytic",
    "ntk_gram_blocked": "ntkadv.kernels.blocked",
    "input_jacobian_fn": "ntkadv.kernels.jacobians",
    "load_input_jacobian": "ntkadv.kernels.jacobians",
    "eigendecompose": "ntkadv.spectra.eigh",
    "coefficients": "ntkadv.spectra.predictor",
    "predict": "ntkadv.spectra.predictor",
    "time_grid": "ntkadv.spectra.predictor",
    "pgd": "ntkadv.attacks.pgd",
    "attack_suite": "ntkadv.attacks.suite",
    "score_features": "ntkadv.features.scoring",
    "proposition1_check": "ntkadv.features.prop1",
    "topr_coefficients": "ntkadv.features.topr",
    "DynamicsRun": "ntkadv.dynamics.training",
    "build_model": "ntkadv.dynamics.models",
    "series_measures": "ntkadv.dynamics.measures",
    "merge_claims": "ntkadv.claims.table",
}
_SUBPACKAGES = (
    "attacks",
    "claims",
    "compat",
    "config",
    "data",
    "dynamics",
    "features",
    "h5io",
    "kernels",
    "losses",
    "plotting",
    "sizing",
    "sources",
    "spectra",
    "timing",
    "transfer",
    "typing",
)
__all__ = sorted([*_API, *_SUBPACKAGES])


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    if name in _SUBPACKAGES:
        return importlib.import_module(f"ntkadv.{name}")
    raise AttributeError(f"module 'ntkadv' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
