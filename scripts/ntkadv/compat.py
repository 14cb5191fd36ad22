"""Compatibility calls for the pinned dependency set (explicit, never import-time).

neural-tangents 0.6.5 eagerly imports its ``experimental`` module, the TensorFlow port
of the empirical NTK (``jax2tf``, ``tensorflow``, ``tf2jax``). That import was ~19 of
the ~22.7 s of ``import neural_tangents`` on the 2-core development machine and is
paid by every kernel, attack, feature and training job; the project never uses the
TensorFlow port, and the lock file keeps TensorFlow out of the environment altogether
(a uv ``override-dependencies`` entry in pyproject.toml). `import_neural_tangents`
registers a placeholder for ``neural_tangents.experimental`` and then imports
neural-tangents: every module of this package that needs neural-tangents gets it
through this call (benchmarks/bench_imports.py: 22.7 s -> 3.9 s per job).

Set ``NTKADV_LOAD_TENSORFLOW=1`` to import the real module (it then needs TensorFlow
and tf2jax installed).
"""

from __future__ import annotations

import os
import sys
import types
from typing import Any

EXPERIMENTAL = "neural_tangents.experimental"


def skip_tensorflow_interop() -> bool:
    """Register a placeholder for ``neural_tangents.experimental`` (see module doc).

    Attribute access on the placeholder raises an AttributeError naming the opt-out.
    A no-op when neural-tangents is already imported, the placeholder (or the real
    module) is registered, or ``NTKADV_LOAD_TENSORFLOW=1`` is set.

    Returns:
        True if the placeholder is in place after the call.
    """
    if os.environ.get("NTKADV_LOAD_TENSORFLOW") == "1":
        return False
    if EXPERIMENTAL in sys.modules:
        return getattr(sys.modules[EXPERIMENTAL], "__ntkadv_placeholder__", False)
    if "neural_tangents" in sys.modules:
        return False
    stub = types.ModuleType(
        EXPERIMENTAL, "Placeholder registered by ntkadv: TensorFlow interop skipped."
    )

    def __getattr__(attr: str) -> Any:
        raise AttributeError(
            f"{EXPERIMENTAL}.{attr} is not loaded: ntkadv skips neural-tangents' "
            "TensorFlow interop (ntkadv.compat); set NTKADV_LOAD_TENSORFLOW=1 and "
            "install tensorflow and tf2jax to load it"
        )

    stub.__getattr__ = __getattr__
    stub.__ntkadv_placeholder__ = True
    sys.modules[EXPERIMENTAL] = stub
    return True


def import_neural_tangents() -> types.ModuleType:
    """``import neural_tangents`` without its TensorFlow interop (see module doc)."""
    skip_tensorflow_interop()
    import neural_tangents

    return neural_tangents
