"""HDF5 input/output: the only module of the library that touches files.

Every write goes to a temporary file in the destination folder and is renamed into
place only after it is complete, so a killed job never leaves a half-written HDF5
file behind (a rerun simply starts again).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np


def _encode_attr(value: Any) -> Any:
    """HDF5 attrs hold scalars, strings and flat arrays; everything else is JSON."""
    if isinstance(value, str | int | float | bool | np.integer | np.floating):
        return value
    if isinstance(value, np.ndarray) and value.dtype.kind in "iufb":
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _decode_attr(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str) and value[:1] in "[{":
        with contextlib.suppress(json.JSONDecodeError):
            return json.loads(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


@contextlib.contextmanager
def atomic_h5(
    path: str | os.PathLike, attrs: Mapping[str, Any] | None = None
) -> Iterator[h5py.File]:
    """Open a new HDF5 file for writing that appears at `path` only on success.

    Usage: ``with atomic_h5(out, attrs) as f: f.create_dataset(...)``. On any
    exception the temporary file is removed and `path` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a killed job
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; outputs are shareable
    try:
        with h5py.File(tmp, "w") as f:
            for key, value in (attrs or {}).items():
                f.attrs[key] = _encode_attr(value)
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def write(
    path: str | os.PathLike,
    arrays: Mapping[str, np.ndarray],
    attrs: Mapping[str, Any] | None = None,
) -> None:
    """Atomically write `arrays` (name -> array) and `attrs` to an HDF5 file."""
    with atomic_h5(path, attrs) as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=np.asarray(value))


def read(
    path: str | os.PathLike, keys: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Read datasets (all, or `keys`) of an HDF5 file into memory."""
    with h5py.File(path, "r") as f:
        names = list(f.keys()) if keys is None else list(keys)
        missing = [k for k in names if k not in f]
        if missing:
            raise KeyError(f"{path}: no dataset(s) {missing}; has {sorted(f.keys())}")
        return {k: f[k][()] for k in names}


def read_attrs(path: str | os.PathLike) -> dict[str, Any]:
    """Read the file-level attributes (JSON-encoded values are decoded)."""
    with h5py.File(path, "r") as f:
        return {k: _decode_attr(v) for k, v in f.attrs.items()}


def provenance(**extra: Any) -> dict[str, Any]:
    """Attributes recorded in every output: package versions, device, extras.

    Versions come from package metadata, so calling this imports nothing heavy;
    the jax device and x64 flag are recorded when the caller already uses jax.
    """
    import sys
    from importlib import metadata

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "host": platform.node(),
    }
    for pkg in ("numpy", "h5py", "jax", "jaxlib", "neural-tangents", "flax"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            info[pkg.replace("-", "_")] = metadata.version(pkg)
    if "jax" in sys.modules:
        jax = sys.modules["jax"]
        info["device"] = str(jax.devices()[0].device_kind)
        info["jax_x64"] = bool(jax.config.jax_enable_x64)
    info.update(extra)
    return info
