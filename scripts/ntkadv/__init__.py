"""ntkadv: the math library of the Tsilivis & Kempe (NeurIPS 2022) reproduction.

Pure JAX/NumPy; never imports snakemake. File I/O lives only in `h5io`.

Importing this package registers a placeholder for `neural_tangents.experimental`
(see `_skip_tensorflow_interop`), so that `import neural_tangents` afterwards does
not load TensorFlow. Set ``NTKADV_LOAD_TENSORFLOW=1`` to opt out.
"""

import os
import sys
import types

_EXPERIMENTAL = "neural_tangents.experimental"


def _skip_tensorflow_interop() -> None:
    """Keep `import neural_tangents` from importing TensorFlow and Keras.

    `neural_tangents/__init__.py` (0.6.5) eagerly imports its `experimental` module,
    whose only content is the TensorFlow port of the empirical NTK (`jax2tf`,
    `tensorflow`, `tf2jax`). That import is ~19 of the ~22 s of `import
    neural_tangents` on a 2-core CPU (benchmarks/bench_imports.py) and is paid by every
    kernel, attack and feature job. ntkadv never uses the TensorFlow port, so a
    placeholder module is registered under that name before neural_tangents is
    imported; any attribute access on it raises an AttributeError naming the opt-out.
    A no-op if neural_tangents is already imported or the opt-out is set.
    """
    if os.environ.get("NTKADV_LOAD_TENSORFLOW") == "1":
        return
    if "neural_tangents" in sys.modules or _EXPERIMENTAL in sys.modules:
        return
    stub = types.ModuleType(
        _EXPERIMENTAL, "Placeholder registered by ntkadv: TensorFlow interop skipped."
    )

    def __getattr__(attr: str):
        raise AttributeError(
            f"{_EXPERIMENTAL}.{attr} is not loaded: ntkadv skips neural-tangents' "
            "TensorFlow interop to save ~19 s per import; set "
            "NTKADV_LOAD_TENSORFLOW=1 before importing ntkadv to load it"
        )

    stub.__getattr__ = __getattr__
    sys.modules[_EXPERIMENTAL] = stub


_skip_tensorflow_interop()
