"""Raw MNIST and CIFAR-10 files: locate, verify and decode them safely.

The canonical files are identified by *content* checksums, so the copy in
``shared/data`` (re-compressed MNIST, CIFAR pickles without ``filenames``) and a
fresh download pass the same check:

- MNIST: sha256 of each decompressed IDX file.
- CIFAR-10: md5 of the official *binary version* rows (1 label byte + 3072 pixel
  bytes per image) rebuilt from each python-version batch.

Reading a raw file cannot execute code or exhaust memory: CIFAR pickles go
through an unpickler that resolves only numpy's array reconstruction, MNIST
gzip streams are decompressed in chunks and cut off at the canonical size. Any
problem raises `DataIntegrityError` naming the file.

Model-ready subsets are built from the decoded splits by `ntkadv.data.subsets`;
downloads are verified by the same readers (`ntkadv.data.download`).
"""

from __future__ import annotations

import hashlib
import io
import math
import pickle
import re
import reprlib
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

MNIST_FILES: dict[str, str] = {
    # file name -> sha256 of the decompressed IDX content
    "train-images-idx3-ubyte.gz": (
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
    ),
    "train-labels-idx1-ubyte.gz": (
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"
    ),
    "t10k-images-idx3-ubyte.gz": (
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
    ),
}
CIFAR10_FILES: dict[str, str] = {
    # file name -> md5 of the equivalent official binary-version file
    "data_batch_1": "5dd7e06a14cb22eb9f671a540d1b7c25",
    "data_batch_2": "5ea93a67294ea407fff1d09f752e9692",
    "data_batch_3": "942cd6a4bcdd0dd3c604fbe906cb4421",
    "data_batch_4": "ae636b3ba5c66a11e91e8cb52e771fcb",
    "data_batch_5": "53f37980c15c3d472c316c40844f3f0d",
    "test_batch": "803d5f7f4d78ea53de84dbe85f74fb6d",
}
#: Where each raw file lives below a data directory (layout of shared/data).
RAW_SUBDIR = {"mnist": "mnist", "cifar10": "cifar10/cifar-10-batches-py"}
RAW_FILES = {"mnist": MNIST_FILES, "cifar10": CIFAR10_FILES}
#: Image shape (H, W, C) of each source.
INPUT_SHAPES: dict[str, tuple[int, int, int]] = {
    "mnist": (28, 28, 1),
    "cifar10": (32, 32, 3),
}
#: Images per class (0..9) of each split (shared/data/README.md); bounds subset sizes.
CLASS_COUNTS: dict[str, dict[str, tuple[int, ...]]] = {
    "mnist": {
        "train": (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
        "test": (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
    },
    "cifar10": {"train": (5000,) * 10, "test": (1000,) * 10},
}
#: CIFAR-10 class names by label (batches.meta).
CIFAR10_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
#: Canonical public sources.
MNIST_URLS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_TAR_MD5 = "c58f30108f718f92721af3b95e74349a"


class DataIntegrityError(ValueError):
    """A raw data file is missing, unreadable, malformed or has the wrong content."""


@dataclass(frozen=True)
class RawSplit:
    """Decoded raw split: uint8 images (N, H, W, C) and int64 labels (N,)."""

    images: np.ndarray
    labels: np.ndarray


def raw_relpaths(source: str) -> list[str]:
    """Paths of the raw files of `source` relative to a data directory."""
    return [f"{RAW_SUBDIR[source]}/{name}" for name in RAW_FILES[source]]


def locate_raw(
    source: str, search_dirs: Sequence[str | Path]
) -> dict[str, Path | None]:
    """Find each raw file of `source` in the first directory that has it.

    Args:
        source: "mnist" or "cifar10".
        search_dirs: data directories in search order; missing ones are skipped.

    Returns:
        relative path -> absolute path found, or None where no directory has it.

    Raises:
        DataIntegrityError: an entry of `search_dirs` exists but is not a directory.
    """
    for d in search_dirs:
        if Path(d).exists() and not Path(d).is_dir():
            raise DataIntegrityError(
                f"data.search_dirs entry '{d}' exists but is not a directory; list "
                f"directories that hold {RAW_SUBDIR[source]}/"
            )
    found: dict[str, Path | None] = {}
    for rel in raw_relpaths(source):
        hits = [Path(d) / rel for d in search_dirs if (Path(d) / rel).is_file()]
        found[rel] = hits[0].resolve() if hits else None
    return found


def _bad(label: str, problem: str) -> DataIntegrityError:
    return DataIntegrityError(
        f"{label}: {problem} - the file is corrupt or not the canonical one; delete "
        "it (or fix data.search_dirs) and rerun"
    )


def check_digest(label: str, expected: str, got: str, what: str) -> None:
    if got != expected:
        raise _bad(label, f"{what} is {got}, expected {expected}")


#: IDX magic and dimensions of each MNIST file (fixing its exact size).
_MNIST_LAYOUT: dict[str, tuple[int, tuple[int, ...]]] = {
    "train-images-idx3-ubyte.gz": (2051, (60000, 28, 28)),
    "train-labels-idx1-ubyte.gz": (2049, (60000,)),
    "t10k-images-idx3-ubyte.gz": (2051, (10000, 28, 28)),
    "t10k-labels-idx1-ubyte.gz": (2049, (10000,)),
}
_CHUNK = 1 << 20


def inflate_idx(stream: BinaryIO, name: str, label: str) -> bytearray:
    """Stream-decompress gzip IDX content (bounded) and check its sha256."""
    if name not in _MNIST_LAYOUT:
        raise DataIntegrityError(f"{label}: not an MNIST file name {list(MNIST_FILES)}")
    dims = _MNIST_LAYOUT[name][1]
    cap = 4 + 4 * len(dims) + math.prod(dims)  # exact canonical size: the size cap
    out, pos, n_in, sha = bytearray(cap), 0, 0, hashlib.sha256()
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip; checks CRC + length
    try:
        while not inflater.eof and (data := stream.read(_CHUNK)):
            if (n_in := n_in + len(data)) > 2 * cap + _CHUNK:
                raise _bad(label, f"compressed size exceeds {2 * cap + _CHUNK:,} bytes")
            while not inflater.eof:
                limit = min(_CHUNK, cap - pos + 1)
                piece = inflater.decompress(data, limit)
                data = inflater.unconsumed_tail
                if pos + len(piece) > cap:
                    raise _bad(
                        label,
                        f"decompressed content exceeds the size cap of {cap:,} bytes "
                        "(the canonical file's size; a gzip bomb?)",
                    )
                out[pos : pos + len(piece)] = piece
                sha.update(piece)
                pos += len(piece)
                if not data and len(piece) < limit:
                    break  # needs more input
        trailing = inflater.unused_data or stream.read(1)
    except zlib.error as err:
        raise _bad(label, f"corrupt gzip stream ({err})") from err
    if not inflater.eof:
        raise _bad(label, "truncated gzip stream")
    if trailing:
        raise _bad(label, "unexpected data after the end of the gzip stream")
    if pos != cap:
        raise _bad(label, f"decompressed content has {pos:,} bytes, expected {cap:,}")
    check_digest(label, MNIST_FILES[name], sha.hexdigest(), "sha256 of the IDX content")
    return out


def read_mnist_idx(path: str | Path) -> np.ndarray:
    """Decode one gzip IDX file after checking its content sha256.

    Decompression is streamed and stops once the output exceeds the canonical
    file's size; the header is read only after the sha256 matched.

    Args:
        path: a file named like a key of `MNIST_FILES`.

    Returns:
        uint8 images (N, 28, 28, 1) for image files, int64 labels (N,) for label files.

    Raises:
        DataIntegrityError: naming the file, for any read, decode or checksum error.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = inflate_idx(f, path.name, str(path))
    except OSError as err:
        raise _bad(str(path), f"cannot read it ({err})") from err
    magic, dims = _MNIST_LAYOUT[path.name]
    header = np.frombuffer(raw, ">u4", count=1 + len(dims)).tolist()
    if header != [magic, *dims]:
        raise _bad(str(path), f"IDX header {header}, expected {[magic, *dims]}")
    array = np.frombuffer(raw, np.uint8, offset=4 + 4 * len(dims))
    if magic == 2049:
        return array.astype(np.int64)
    array.flags.writeable = False  # as before (a view of immutable bytes)
    return array.reshape(*dims, 1)


_CIFAR_ROWS = 10000
_CIFAR_KEYS = ("batch_label", "data", "filenames", "labels")
CIFAR_MAX_BYTES = 64 * 2**20  # canonical: ~31 MB; Python 3 protocol-2 copy: ~46 MB


class _Global:
    """Allow-listed pickle global; immutable, so a pickle BUILD cannot alter it."""

    __slots__ = ("func",)

    def __init__(self, func) -> None:
        object.__setattr__(self, "func", func)

    def __setattr__(self, key: str, value) -> None:
        raise AttributeError("read-only")

    def __call__(self, *args):
        return self.func(*args)  # _NDARRAY: None, not callable


_NDARRAY = _Global(None)  # stands in for numpy.ndarray: only a _reconstruct argument


def _reconstruct(subtype, shape, typecode) -> np.ndarray:
    if subtype is not _NDARRAY or shape != (0,) or typecode not in (b"b", "b"):
        raise pickle.UnpicklingError("unexpected numpy _reconstruct arguments")
    return np.empty(0, np.int8)  # what ndarray.__reduce__ starts from; BUILD fills it


def _dtype(code, align, copy) -> np.dtype:
    text = code.decode("latin1") if type(code) is bytes else code
    if not (type(text) is str and re.fullmatch(r"[<>|=]?[biuf][1248]", text)):
        raise pickle.UnpicklingError(f"refused numpy dtype {code!r}")
    return np.dtype(text, bool(align), bool(copy))


def _latin1(text, encoding) -> bytes:
    # how Python 3 writes bytes at protocol 2: _codecs.encode(str, "latin1")
    if type(text) is not str or encoding != "latin1":
        raise pickle.UnpicklingError(f"refused _codecs.encode(..., {encoding!r})")
    return text.encode("latin1")


_CIFAR_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _Global(_reconstruct),
    ("numpy._core.multiarray", "_reconstruct"): _Global(_reconstruct),
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _Global(_dtype),
    ("_codecs", "encode"): _Global(_latin1),
}


class _BatchUnpickler(pickle.Unpickler):
    """Resolves only the globals of a CIFAR-10 batch (numpy array rebuilding)."""

    def __init__(self, file: BinaryIO, label: str) -> None:
        super().__init__(file, encoding="bytes")
        self.label = label

    def find_class(self, module: str, name: str) -> _Global:
        """The stand-in of an allow-listed global; DataIntegrityError otherwise."""
        if (module, name) not in _CIFAR_GLOBALS:
            raise DataIntegrityError(
                f"{self.label}: refused to load pickled global '{module}.{name}' "
                f"(a CIFAR-10 batch may only use {[*map('.'.join, _CIFAR_GLOBALS)]}); "
                "not a genuine batch, possibly malicious - nothing was executed; "
                "delete it and rerun"
            )
        return _CIFAR_GLOBALS[(module, name)]


def _batch_fields(batch: object) -> dict:
    """The validated fields of an unpickled batch by str key (ValueError if bad)."""
    if type(batch) is not dict:
        raise ValueError(f"top level is a {type(batch).__name__}, not a dict")
    keys = [k.decode("latin1") if type(k) is bytes else k for k in batch]
    unexpected = [k for k in keys if k not in _CIFAR_KEYS]
    if unexpected or len(set(keys)) < len(keys) or not {"data", "labels"} <= {*keys}:
        raise ValueError(
            f"keys {reprlib.repr(keys)}, expected data, labels and optionally "
            "batch_label, filenames"
        )
    fields = dict(zip(keys, batch.values(), strict=True))
    data, labels = fields["data"], fields["labels"]
    shape = (_CIFAR_ROWS, 3072)
    got = f"{data.dtype} {data.shape}" if type(data) is np.ndarray else type(data)
    if got != f"uint8 {shape}":
        raise ValueError(f"'data' is {got}, expected a uint8 {shape} array")
    if not (
        type(labels) is list
        and len(labels) == _CIFAR_ROWS
        and all(type(v) is int and 0 <= v <= 9 for v in labels)
    ):
        raise ValueError(f"'labels' is not a list of {_CIFAR_ROWS} ints in 0..9")
    names = fields.get("filenames", [""] * _CIFAR_ROWS)
    if not (
        type(fields.get("batch_label", "")) in (str, bytes)
        and type(names) is list
        and len(names) == _CIFAR_ROWS
        and all(type(v) in (str, bytes) for v in names)
    ):
        raise ValueError(f"'batch_label' or 'filenames' ({_CIFAR_ROWS}) not strings")
    return fields


def decode_cifar(payload: bytes, name: str, label: str) -> RawSplit:
    """Parse a python-version batch without running code; check its content md5."""
    if name not in CIFAR10_FILES:
        raise DataIntegrityError(f"{label}: not a CIFAR-10 batch {list(CIFAR10_FILES)}")
    stream = io.BytesIO(payload)
    try:
        if len(payload) > CIFAR_MAX_BYTES:
            raise ValueError(f"larger than {CIFAR_MAX_BYTES:,} bytes")
        fields = _batch_fields(_BatchUnpickler(stream, label).load())
        if stream.tell() != len(payload):
            raise ValueError("unexpected data after the pickle")
    except DataIntegrityError:
        raise
    except Exception as err:  # noqa: BLE001 - any failure to parse untrusted bytes
        raise _bad(label, f"not a CIFAR-10 batch ({err})") from err
    data, labels = fields["data"], np.asarray(fields["labels"], np.uint8)
    rows = np.concatenate([labels[:, None], data], axis=1)
    got = hashlib.md5(rows.tobytes()).hexdigest()
    check_digest(label, CIFAR10_FILES[name], got, "md5 of the binary-version rows")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return RawSplit(np.ascontiguousarray(images), labels.astype(np.int64))


def read_cifar_batch(path: str | Path) -> RawSplit:
    """Decode one CIFAR-10 python-version batch after checking its content md5.

    The pickle is parsed by an unpickler that resolves only numpy's array
    reconstruction (so no code can run) and must be a dict of data, labels and
    optionally batch_label, filenames (as in the official download).

    Args:
        path: a file named like a key of `CIFAR10_FILES`.

    Returns:
        RawSplit with uint8 images (10000, 32, 32, 3) HWC and int64 labels (10000,).

    Raises:
        DataIntegrityError: naming the file, if it is unreadable, malformed,
            references any other global, or has the wrong content.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            payload = f.read(CIFAR_MAX_BYTES + 1)
    except OSError as err:
        raise _bad(str(path), f"cannot read it ({err})") from err
    return decode_cifar(payload, path.name, str(path))


def load_raw(source: str, files: Mapping[str, Path]) -> tuple[RawSplit, RawSplit]:
    """Load and verify the full train and test splits of `source`.

    Args:
        source: "mnist" or "cifar10".
        files: file name (e.g. "data_batch_1") -> path, for every raw file.
    """
    paths = {Path(p).name: Path(p) for p in files.values()}
    missing = sorted(set(RAW_FILES[source]) - set(paths))
    if missing:
        raise DataIntegrityError(f"missing raw {source} file(s): {missing}")
    if source == "mnist":
        train = RawSplit(
            read_mnist_idx(paths["train-images-idx3-ubyte.gz"]),
            read_mnist_idx(paths["train-labels-idx1-ubyte.gz"]),
        )
        test = RawSplit(
            read_mnist_idx(paths["t10k-images-idx3-ubyte.gz"]),
            read_mnist_idx(paths["t10k-labels-idx1-ubyte.gz"]),
        )
        return train, test
    batches = [read_cifar_batch(paths[f"data_batch_{i}"]) for i in range(1, 6)]
    train = RawSplit(
        np.concatenate([b.images for b in batches]),
        np.concatenate([b.labels for b in batches]),
    )
    return train, read_cifar_batch(paths["test_batch"])


def raw_checksums(source: str) -> dict[str, str]:
    """Expected content checksum of each raw file of `source` (provenance)."""
    return dict(RAW_FILES[source])
