"""HDF5 input/output of every cached array (CSV tables are written by the stages).

Every write goes to a temporary file in the destination folder and is renamed into
place only after it is complete, so a killed job never leaves a half-written HDF5
file behind (a rerun simply starts again). Every read error (truncated or corrupt
file, missing dataset) raises `H5ReadError` naming the file and the rule that makes
it (`PRODUCERS`, checked against the workflow by tests/workflow/test_workflow.py).

Integrity (all inside this module; call sites do not change):

* **Content digests.** `atomic_h5` (and so `write`) stores on every dataset the
  attribute ``sha256``: the SHA-256 of its dtype, shape and C-order bytes
  (`array_digest`), computed from what was written to the temporary file. `read`
  checks the datasets it returns, `open_read` every dataset of the file (streamed in
  64 MB blocks, once per file state per process); a mismatch or a missing digest
  raises `H5IntegrityError` naming the file, the dataset, the rule that writes it
  and the fix (delete it and rerun). A Gram scaled by 2 on disk is still symmetric
  and PSD; its digest is not. Cost: one extra pass over each output at write time
  and a hash of what is read. SHA-256 of a 10,000 x 10,000 float64 Gram (800 MB)
  took 1.1 s idle / 2.6 s under load on this 2-core machine, blake2b 2.2 s / 5.5 s
  (OpenSSL's SHA-256 uses the CPU's SHA instructions); reading that Gram from HDF5
  under the same load took 14 s, so the check adds ~15-20 % to a read.
* **Where a file belongs.** A workflow output records ``written_as``, its path
  below ``results/``; opening it at another such path (a file swapped in from
  another dataset or architecture) raises `H5IntegrityError`.
* **What it was computed from.** Each output records ``sources``: the file digest
  (`file_digest`, over its datasets' digests) of every workflow output of another
  rule this process opened before writing it (eigh.h5 records gram.h5; scores.h5
  records gram.h5 and eigh.h5). When a process opens two files of which one
  records the other as a source, the recorded digest must be the other file's
  current one; otherwise the recording file is stale (its source was replaced or
  recomputed after it) and opening raises `H5IntegrityError` naming it. This is the
  cheapest sound check of a swap without passing each consumer its expected
  identity: it needs no call-site change and catches exactly the mixtures a job can
  be hurt by (attack_ntk reading a Gram and an eigendecomposition of another Gram).
  A file read alone is checked against its sources as they are now on disk: a
  recorded source that exists but whose datasets' recorded digests differ
  (`file_digest` reads only dataset attributes, no data) means the file belongs to
  another run (e.g. a Gram copied in from a run with another training subset, read
  by eigendecompose_gram), and opening it raises `H5IntegrityError` naming it.
  A source that no longer exists is not checked.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fnmatch
import hashlib
import json
import math
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
    ("attacks/*/*/shards/*.h5", "attack_ntk_shard"),
    ("attacks/*/*/*.h5", "attack_ntk"),
    ("features/*/*/shards/*.h5", "score_features_shard"),
    ("features/*/*/scores.h5", "score_features"),
    ("features/*/*/topr.h5", "evaluate_topr_kernels"),
    ("transfer/*/*/ntk_reference.h5", "compute_transfer_reference"),
    ("transfer/*/*/width*_seed*.h5", "train_twolayer_net"),
    ("dynamics/*/linearized/*/*", "train_linearized_network"),
    ("dynamics/*/*/measures.h5", "measure_kernel_dynamics"),
    ("dynamics/*", "train_dynamics_network"),
)

#: Rules that write another rule's outputs (the merge of that rule's evaluation-point
#: shards, config resources.max_job_min): rule -> the rule `PRODUCERS` names.
WRITES_FOR: dict[str, str] = {
    "merge_attack_shards": "attack_ntk",
    "merge_feature_shards": "score_features",
}


class H5ReadError(OSError):
    """An HDF5 file of the workflow cannot be read (the file and its rule named)."""


class H5IntegrityError(H5ReadError):
    """An HDF5 file's content or identity is not what its writer recorded."""


#: Dataset attribute holding the content digest; file attrs of identity / lineage.
DIGEST_ATTR, WRITTEN_AS_ATTR, SOURCES_ATTR = "sha256", "written_as", "sources"
#: Bytes hashed per block when a dataset is streamed from disk.
_DIGEST_BLOCK_BYTES = 64 * 2**20


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


def _fix(path: str | os.PathLike) -> str:
    rule = producer(path)
    return (
        f"it is written by rule {rule}: delete it and rerun (or run snakemake with "
        f"--forcerun {rule})"
        if rule
        else "delete or replace it"
    )


def _read_error(path: str | os.PathLike, err: BaseException) -> H5ReadError:
    return H5ReadError(f"{path}: cannot read this HDF5 file ({err}); {_fix(path)}")


def _integrity_error(path: str | os.PathLike, what: str) -> H5IntegrityError:
    return H5IntegrityError(f"{path}: {what}; {_fix(path)}")


# ---------------------------------------------------------------- digests


def _hasher(dtype: np.dtype, shape: tuple[int, ...]) -> Any:
    h = hashlib.sha256()
    h.update(f"{np.dtype(dtype).str}{tuple(shape)}".encode())
    return h


def _update(h: Any, block: np.ndarray) -> None:
    block = np.asarray(block)
    if block.dtype.kind == "O":  # variable-length strings: length-prefixed UTF-8
        for item in block.ravel():
            raw = item if isinstance(item, bytes) else str(item).encode()
            h.update(len(raw).to_bytes(8, "little") + raw)
    else:
        h.update(np.ascontiguousarray(block).reshape(-1).view(np.uint8))


def array_digest(array: np.ndarray) -> str:
    """SHA-256 (hex) of an array's dtype, shape and C-order bytes.

    Equal to the digest of the same array streamed in row blocks from HDF5
    (`dataset_digest`), since C-order row blocks concatenate to the whole array.
    """
    array = np.asarray(array)
    h = _hasher(array.dtype, array.shape)
    _update(h, array)
    return h.hexdigest()


def dataset_digest(dset: h5py.Dataset) -> str:
    """`array_digest` of an HDF5 dataset, read in ~64 MB row blocks."""
    h = _hasher(dset.dtype, dset.shape)
    if dset.ndim == 0 or dset.size == 0:
        _update(h, dset[()])
    else:
        row = dset.dtype.itemsize * math.prod(dset.shape[1:])
        step = max(1, _DIGEST_BLOCK_BYTES // max(1, row))
        for i0 in range(0, dset.shape[0], step):
            _update(h, dset[i0 : i0 + step])
    return h.hexdigest()


def _datasets(f: h5py.File) -> dict[str, h5py.Dataset]:
    found: dict[str, h5py.Dataset] = {}
    f.visititems(
        lambda name, obj: (
            found.__setitem__(name, obj) if isinstance(obj, h5py.Dataset) else None
        )
    )
    return found


def file_digest(f: h5py.File) -> str:
    """SHA-256 over the sorted (name, recorded digest) pairs of a file's datasets:
    what a downstream file records of its sources (provenance attrs excluded, so a
    deterministic rerun keeps it)."""
    h = hashlib.sha256()
    for name, dset in sorted(_datasets(f).items()):
        h.update(f"{name}={_decode_attr(dset.attrs.get(DIGEST_ATTR, ''))};".encode())
    return h.hexdigest()


def _check_digest(path: str | os.PathLike, name: str, dset: Any, actual: str) -> None:
    recorded = _decode_attr(dset.attrs.get(DIGEST_ATTR))
    if recorded is None:
        raise _integrity_error(
            path,
            f"dataset {name!r} has no content digest (written by hand or before "
            "digests were recorded)",
        )
    if recorded != actual:
        raise _integrity_error(
            path,
            f"dataset {name!r} does not match the content digest its writer recorded "
            f"(sha256 {recorded[:12]}..., now {actual[:12]}...): the file was altered "
            "on disk",
        )


# ---------------------------------------------------------------- identity, lineage


def _absolute(path: str | os.PathLike) -> str:
    """Absolute, normalised, symlinks kept (a results/ linked to scratch stays
    below results/)."""
    return Path(os.path.abspath(path)).as_posix()


def _results_relative(path: str | os.PathLike) -> tuple[str, str] | None:
    """(root up to and including ``results/``, the rest) of a workflow output."""
    text = _absolute(path)
    if producer(text) is None:
        return None
    root, rest = text.rsplit("results/", 1)
    return root + "results/", rest


def _stat_key(path: str | os.PathLike) -> tuple[int, ...]:
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


@dataclasses.dataclass
class _Opened:
    """What this process has seen of one file (valid while its stat is unchanged)."""

    stat: tuple[int, ...]
    digest: str
    sources: dict[str, str]
    verified: set[str] = dataclasses.field(default_factory=set)


#: Absolute path -> what this process saw when it opened the file.
_OPENED: dict[str, _Opened] = {}
#: Absolute path -> (stat, file digest) of recorded sources checked on disk only.
_ON_DISK: dict[str, tuple[tuple[int, ...], str]] = {}


def _digest_on_disk(path: str) -> str | None:
    """`file_digest` of a file as it is now on disk (None if absent or unreadable),
    without registering it as opened (so it does not enter any lineage)."""
    try:
        stat = _stat_key(path)
        cached = _ON_DISK.get(path)
        if cached is not None and cached[0] == stat:
            return cached[1]
        with h5py.File(path, "r") as f:
            digest = file_digest(f)
    except (OSError, ValueError):
        return None  # its own reader names what is wrong with it
    _ON_DISK[path] = (stat, digest)
    return digest


def _current(path: str) -> _Opened | None:
    seen = _OPENED.get(path)
    try:
        if seen is not None and seen.stat == _stat_key(path):
            return seen
    except OSError:
        pass
    _OPENED.pop(path, None)
    return None


def _check_identity(path: str | os.PathLike, f: h5py.File) -> _Opened:
    """Check `written_as` and the lineage against files opened before; register."""
    key = _absolute(path)
    seen = _current(key)
    if seen is None:
        sources = _decode_attr(f.attrs.get(SOURCES_ATTR, "{}"))
        seen = _Opened(_stat_key(key), file_digest(f), dict(sources or {}))
    where = _results_relative(key)
    written_as = _decode_attr(f.attrs.get(WRITTEN_AS_ATTR))
    if where and written_as and written_as != where[1]:
        raise _integrity_error(
            path,
            f"this file was written as results/{written_as}, not results/{where[1]} "
            "(swapped in from another run or target)",
        )
    if where:
        root, rel = where
        for src, recorded in seen.sources.items():  # this file is stale?
            other = _current(root + src)
            if other is not None and other.digest != recorded:
                raise _integrity_error(
                    path,
                    f"it was computed from a different results/{src} than the one "
                    "read with it (that file was replaced or recomputed since)",
                )
            on_disk = None if other is not None else _digest_on_disk(root + src)
            if on_disk is not None and on_disk != recorded:
                raise _integrity_error(
                    path,
                    f"it was computed from a different results/{src} than the one "
                    "now on disk (this file was copied in from another run, or its "
                    "source was replaced or recomputed since)",
                )
        for other_path, other in list(_OPENED.items()):  # a file read before is?
            recorded = other.sources.get(rel)
            if (
                recorded is not None
                and other_path.startswith(root)
                and recorded != seen.digest
                and _current(other_path) is not None
            ):
                raise _integrity_error(
                    other_path,
                    f"it was computed from a different results/{rel} than the one "
                    "read with it (that file was replaced or recomputed since)",
                )
    _OPENED[key] = seen
    return seen


def _lineage(out: Path) -> dict[str, str]:
    """Digests of the workflow outputs of other rules this process has opened."""
    where = _results_relative(out)
    if where is None:
        return {}
    root, _ = where
    rule = producer(out)
    found = {}
    for path in list(_OPENED):
        seen = _current(path)
        if seen is not None and path.startswith(root) and producer(path) != rule:
            found[path[len(root) :]] = seen.digest
    return found


@contextlib.contextmanager
def _open(path: str | os.PathLike) -> Iterator[tuple[h5py.File, _Opened]]:
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as err:
        raise _read_error(path, err) from err
    try:
        with f:
            yield f, _check_identity(path, f)
    except (OSError, ValueError, KeyError) as err:
        if isinstance(err, H5ReadError):
            raise
        raise _read_error(path, err) from err


@contextlib.contextmanager
def open_read(path: str | os.PathLike) -> Iterator[h5py.File]:
    """``h5py.File(path, 'r')`` whose open and read errors name the file and rule.

    Every dataset's content digest is checked first (streamed; once per file state
    in this process), since the caller may read any part of any dataset.
    """
    with _open(path) as (f, seen):
        for name, dset in _datasets(f).items():
            if name not in seen.verified:
                _check_digest(path, name, dset, dataset_digest(dset))
                seen.verified.add(name)
        yield f


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
    written (`check_free_space`). Before the rename every dataset gets its content
    digest, and a workflow output its `written_as` and `sources` (module docstring).
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
    where = _results_relative(path)
    with interrupts.temporary(tmp):  # a forced stop deletes it (ntkadv.interrupts)
        try:
            with h5py.File(tmp, "w") as f:
                for key, value in (attrs or {}).items():
                    f.attrs[key] = _encode_attr(value)
                yield f
                for dset in _datasets(f).values():
                    dset.attrs[DIGEST_ATTR] = dataset_digest(dset)
                if where:
                    f.attrs[WRITTEN_AS_ATTR] = where[1]
                    f.attrs[SOURCES_ATTR] = _encode_attr(_lineage(path))
            os.replace(tmp, path)
            _OPENED.pop(_absolute(path), None)
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
        H5IntegrityError: a dataset read does not match its recorded digest, or the
            file's identity or lineage does not match (module docstring).
    """
    with _open(path) as (f, seen):
        names = list(f.keys()) if keys is None else list(keys)
        missing = [k for k in names if k not in f]
        if missing:
            raise KeyError(f"{path}: no dataset(s) {missing}; has {sorted(f.keys())}")
        try:
            out = {k: f[k][()] for k in names}
        except (OSError, ValueError) as err:
            raise _read_error(path, err) from err
        for k, value in out.items():
            _check_digest(path, k, f[k], array_digest(value))
            seen.verified.add(f[k].name.lstrip("/"))
        return out


def read_attrs(path: str | os.PathLike) -> dict[str, Any]:
    """Read the file-level attributes (JSON-encoded values are decoded); the file's
    identity and lineage are checked, its datasets are not read."""
    with _open(path) as (f, _):
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
