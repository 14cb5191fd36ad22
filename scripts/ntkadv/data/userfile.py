"""A researcher's own image arrays as a dataset source (``source: file``).

A dataset entry ``{source: file, path: <file>, classes, n_train, n_test, eps}`` reads
the arrays from the file it names instead of MNIST / CIFAR-10:

- an ``.npz`` (NumPy) or ``.h5`` / ``.hdf5`` file with arrays ``x_train``, ``y_train``,
  ``x_test``, ``y_test``;
- images (N, H, W, C), ``uint8`` (0-255) or floating point in [0, 1];
- labels (N,) integers in 0..9 (the classes a config may keep);
- optionally ``class_names``: one string per label (an array of str, or in HDF5 a
  string dataset), used in the figures.

The file is validated before any job (`describe`, called by the config checks) and
again by the data job (`load`); every mistake is a `DataIntegrityError` of one line
naming the file and the array. Nothing in the file can run code: ``.npz`` members are
read with ``allow_pickle=False`` (an object array is refused, never unpickled) and
HDF5 files are read as plain datasets. The file's sha256 goes into the provenance of
the prepared dataset.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ntkadv.data.raw import DataIntegrityError, RawSplit

ARRAYS = ("x_train", "y_train", "x_test", "y_test")
SUFFIXES = (".npz", ".h5", ".hdf5")
#: Labels a config may keep (the schema's class range).
MAX_LABEL = 9


@dataclass(frozen=True)
class UserData:
    """A validated user file.

    Attributes:
        train, test: the splits (images uint8 or float32 in [0, 1], int64 labels).
        input_shape: (H, W, C).
        class_counts: {"train", "test"} -> images per label 0..9.
        class_names: one name per label 0..9 (the file's, else "0".."9").
        sha256: of the file's bytes.
    """

    train: RawSplit
    test: RawSplit
    input_shape: tuple[int, int, int]
    class_counts: dict[str, tuple[int, ...]]
    class_names: tuple[str, ...]
    sha256: str


def _err(path: Path, problem: str) -> DataIntegrityError:
    return DataIntegrityError(f"{path}: {problem}")


def _read(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an .npz / HDF5 file (no pickles, no code)."""
    if not path.is_file():
        raise _err(path, "no such file (datasets.<name>.path)")
    if path.suffix.lower() not in SUFFIXES:
        raise _err(path, f"unsupported file type; use one of {', '.join(SUFFIXES)}")
    wanted = (*ARRAYS, "class_names")
    if path.suffix.lower() == ".npz":
        if not zipfile.is_zipfile(path):
            raise _err(path, "not a readable .npz file (not a zip archive)")
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in wanted if k in z.files}
        except ValueError as err:  # an object array needs pickle: refused
            raise _err(
                path, f"holds an object array, which is refused ({err})"
            ) from err
        except (OSError, zipfile.BadZipFile, EOFError) as err:
            raise _err(path, f"not a readable .npz file ({err})") from err
    import h5py

    try:
        with h5py.File(path, "r") as f:
            out = {}
            for k in wanted:
                if k in f:
                    if not isinstance(f[k], h5py.Dataset):
                        raise _err(path, f"'{k}' is a group, expected an array")
                    if k == "class_names":  # h5py gives objects: plain str
                        out[k] = np.asarray(f[k].asstr()[()], dtype=str)
                    else:
                        out[k] = f[k][()]
            return out
    except DataIntegrityError:
        raise
    except (OSError, TypeError, ValueError) as err:
        raise _err(path, f"not a readable HDF5 file ({err})") from err


def _images(path: Path, name: str, x: np.ndarray) -> np.ndarray:
    if x.ndim != 4 or min(x.shape) < 1:
        raise _err(path, f"{name} has shape {x.shape}, expected (N, H, W, C)")
    if x.dtype == np.uint8:
        return x
    if not np.issubdtype(x.dtype, np.floating):
        raise _err(path, f"{name} has dtype {x.dtype}, expected uint8 or float")
    if not np.all(np.isfinite(x)):
        raise _err(path, f"{name} has non-finite values")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise _err(path, f"{name} values lie in [{lo:g}, {hi:g}], expected [0, 1]")
    return x.astype(np.float32)


def _labels(path: Path, name: str, y: np.ndarray, n: int) -> np.ndarray:
    if y.ndim != 1 or y.shape[0] != n:
        raise _err(path, f"{name} has shape {y.shape}, expected ({n},) (one per image)")
    if not np.issubdtype(y.dtype, np.integer):
        raise _err(path, f"{name} has dtype {y.dtype}, expected integer labels")
    if n and (int(y.min()) < 0 or int(y.max()) > MAX_LABEL):
        raise _err(
            path,
            f"{name} labels lie in [{int(y.min())}, {int(y.max())}], "
            f"expected 0..{MAX_LABEL}",
        )
    return y.astype(np.int64)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load(path: str | Path) -> UserData:
    """Read and validate a user dataset file (see the module docstring).

    Raises:
        DataIntegrityError: one line naming the file and the array at fault.
    """
    path = Path(path)
    arrays = _read(path)
    missing = [k for k in ARRAYS if k not in arrays]
    if missing:
        raise _err(path, f"no array(s) {missing}; needs {', '.join(ARRAYS)}")
    splits = {}
    for split in ("train", "test"):
        x = _images(path, f"x_{split}", arrays[f"x_{split}"])
        y = _labels(path, f"y_{split}", arrays[f"y_{split}"], x.shape[0])
        splits[split] = RawSplit(x, y)
    shape = splits["train"].images.shape[1:]
    if splits["test"].images.shape[1:] != shape:
        raise _err(
            path,
            f"x_test images are {splits['test'].images.shape[1:]}, "
            f"x_train images {shape}",
        )
    names = tuple(str(v) for v in range(MAX_LABEL + 1))
    if "class_names" in arrays:
        given = np.asarray(arrays["class_names"])
        top = max(int(s.labels.max()) for s in splits.values())
        if given.ndim != 1 or given.dtype.kind not in "US" or given.size <= top:
            raise _err(
                path,
                f"class_names must be {top + 1}+ strings (one per label), got "
                f"shape {given.shape} dtype {given.dtype}",
            )
        names = tuple(str(v) for v in given.astype(str)) + names[given.size :]
    counts = {
        split: tuple(
            int(c) for c in np.bincount(s.labels, minlength=MAX_LABEL + 1)[:10]
        )
        for split, s in splits.items()
    }
    return UserData(
        splits["train"],
        splits["test"],
        (int(shape[0]), int(shape[1]), int(shape[2])),
        counts,
        names[: MAX_LABEL + 1],
        _sha256(path),
    )
