"""HDF5 input/output: the only module of the library that touches files.

Every write goes to a temporary file in the destination folder and is renamed into
place only after it is complete, so a killed job never leaves a half-written HDF5
file behind (a rerun simply starts again). Every read error (truncated or corrupt
file, missing dataset) raises `H5ReadError` naming the file and the rule that makes
it (`PRODUCERS`, checked against the workflow by tests/workflow/test_workflow.py).
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ntkadv import interrupts

#: (pattern below results/, rule) of every HDF5 file the workflow writes; first match.
PRODUCERS: tuple[tuple[str, str], ...] = (
    ("data/*.h5", "prepare_dataset"),
    ("ntk/*/*/gram.h5", "compute_ntk_gram"),
    ("ntk/*/*/jacobian.h5", "compute_ntk_input_jacobian"),
    ("spectra/*/*/eigh.h5", "eigendecompose_gram"),
    ("attacks/*/*/*.h5", "attack_ntk"),
    ("features/*/*/scores.h5", "score_features"),
    ("features/*/*/topr.h5", "evaluate_topr_kernels"),
    ("transfer/*/*/ntk_reference.h5", "compute_transfer_reference"),
    ("transfer/*/*/width*_seed*.h5", "train_twolayer_net"),
    ("dynamics/*/linearized/*/*", "train_linearized_network"),
    ("dynamics/*/*/measures.h5", "measure_kernel_dynamics"),
    ("dynamics/*", "train_dynamics_network"),
)


class H5ReadError(OSError):
    """An HDF5 file of the workflow cannot be read (the file and its rule named)."""


def producer(path: str | os.PathLike) -> str | None:
    """The rule that writes `path` (None if it is not a workflow output)."""
    text = Path(path).as_posix()
    if "results/" not in text:
        return None
    below = text.rsplit("results/", 1)[1]
    for pattern, rule in PRODUCERS:
        if fnmatch.fnmatch(below, pattern):
            return rule
    return None


def _read_error(path: str | os.PathLike, err: BaseException) -> H5ReadError:
    rule = producer(path)
    how = (
        f"it is written by rule {rule}: delete it and rerun (or run snakemake with "
        f"--forcerun {rule})"
        if rule
        else "delete or replace it"
    )
    return H5ReadError(f"{path}: cannot read this HDF5 file ({err}); {how}")


@contextlib.contextmanager
def open_read(path: str | os.PathLike) -> Iterator[h5py.File]:
    """``h5py.File(path, 'r')`` whose open and read errors name the file and rule."""
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as err:
        raise _read_error(path, err) from err
    try:
        with f:
            yield f
    except (OSError, ValueError, KeyError) as err:
        if isinstance(err, H5ReadError):
            raise
        raise _read_error(path, err) from err


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


def check_free_space(path: str | os.PathLike, needed_bytes: int) -> None:
    """Refuse to start writing `needed_bytes` (+64 MB margin) where they do not fit.

    Raises:
        OSError: errno ENOSPC, naming the folder, what is needed and what is free.
    """
    folder = Path(path).parent
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < needed_bytes + MARGIN_BYTES:
        raise OSError(
            errno.ENOSPC,
            f"no space left for {Path(path).name}: needs ~{needed_bytes / 2**20:.0f} MB"
            f" (+{MARGIN_BYTES // 2**20} MB margin), {free / 2**20:.0f} MB free; "
            "free disk space or move results/",
            str(folder),
        )


#: Free space kept beyond an output's expected size.
MARGIN_BYTES = 64 * 2**20


@contextlib.contextmanager
def atomic_h5(
    path: str | os.PathLike,
    attrs: Mapping[str, Any] | None = None,
    expected_bytes: int = 0,
) -> Iterator[h5py.File]:
    """Open a new HDF5 file for writing that appears at `path` only on success.

    Usage: ``with atomic_h5(out, attrs) as f: f.create_dataset(...)``. On any
    exception the temporary file is removed and `path` is left untouched. With
    `expected_bytes`, a disk that cannot hold the file fails before anything is
    written (`check_free_space`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    check_free_space(path, expected_bytes)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a killed job
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; outputs are shareable
    with interrupts.temporary(tmp):  # a forced stop deletes it (ntkadv.interrupts)
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
    sizes = sum(np.asarray(v).nbytes for v in arrays.values())
    with atomic_h5(path, attrs, expected_bytes=sizes) as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=np.asarray(value))


def read(
    path: str | os.PathLike, keys: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Read datasets (all, or `keys`) of an HDF5 file into memory.

    Raises:
        KeyError: a requested dataset is absent (the file and what it has named).
        H5ReadError: the file cannot be read (truncated, corrupt, not HDF5).
    """
    with open_read(path) as f:
        names = list(f.keys()) if keys is None else list(keys)
        missing = [k for k in names if k not in f]
        if missing:
            raise KeyError(f"{path}: no dataset(s) {missing}; has {sorted(f.keys())}")
        try:
            return {k: f[k][()] for k in names}
        except (OSError, ValueError) as err:
            raise _read_error(path, err) from err


def read_attrs(path: str | os.PathLike) -> dict[str, Any]:
    """Read the file-level attributes (JSON-encoded values are decoded)."""
    with open_read(path) as f:
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
