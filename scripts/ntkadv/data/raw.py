"""Raw MNIST and CIFAR-10 files: verify and decode them safely (the registry's readers).

The canonical files are identified by *content* checksums (the digests of the
registry `ntkadv.data.sources.SOURCES`, passed in by its callers), so the copy in
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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np


class DataIntegrityError(ValueError):
    """A raw data file is missing, unreadable, malformed or has the wrong content."""


@dataclass(frozen=True)
class RawSplit:
    """Decoded raw split: uint8 images (N, H, W, C) and int64 labels (N,)."""

    images: np.ndarray
    labels: np.ndarray


def _bad(label: str, problem: str) -> DataIntegrityError:
    return DataIntegrityError(
        f"{label}: {problem} - the file is corrupt or not the canonical one; delete "
        "it (or fix data.search_dirs) and rerun"
    )


def check_digest(label: str, expected: str, got: str, what: str) -> None:
    if got != expected:
        raise _bad(label, f"{what} is {got}, expected {expected}")


#: Size cap of a plain raw file read by `read_verified`.
MAX_FILE_BYTES = 256 * 2**20


def check_sha256(payload: bytes, name: str, label: str, sha256: str) -> None:
    """Verify a plain file's bytes by their sha256 (a `Check` for new sources)."""
    check_digest(label, sha256, hashlib.sha256(payload).hexdigest(), "sha256")


def read_verified(path: str | Path, sha256: str) -> bytes:
    """The bytes of a plain raw file (at most `MAX_FILE_BYTES`) after checking their
    sha256: the building block of a reader for a new source's files."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            payload = f.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise _bad(str(path), f"cannot read it ({err})") from err
    if len(payload) > MAX_FILE_BYTES:
        raise _bad(str(path), f"larger than {MAX_FILE_BYTES:,} bytes")
    check_sha256(payload, path.name, str(path), sha256)
    return payload


#: IDX magic and dimensions of each MNIST file (fixing its exact size).
_MNIST_LAYOUT: dict[str, tuple[int, tuple[int, ...]]] = {
    "train-images-idx3-ubyte.gz": (2051, (60000, 28, 28)),
    "train-labels-idx1-ubyte.gz": (2049, (60000,)),
    "t10k-images-idx3-ubyte.gz": (2051, (10000, 28, 28)),
    "t10k-labels-idx1-ubyte.gz": (2049, (10000,)),
}
_CHUNK = 1 << 20


def inflate_idx(stream: BinaryIO, name: str, label: str, sha256: str) -> bytearray:
    """Stream-decompress gzip IDX content (bounded) and check its sha256."""
    if name not in _MNIST_LAYOUT:
        raise DataIntegrityError(
            f"{label}: not an MNIST file name {list(_MNIST_LAYOUT)}"
        )
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
    check_digest(label, sha256, sha.hexdigest(), "sha256 of the IDX content")
    return out


def check_mnist_idx(payload: bytes, name: str, label: str, sha256: str) -> None:
    """Verify the bytes of one gzip IDX file (a download) as `read_mnist_idx` does."""
    inflate_idx(io.BytesIO(payload), name, label, sha256)


def read_mnist_idx(path: str | Path, sha256: str) -> np.ndarray:
    """Decode one gzip IDX file after checking its content sha256.

    Decompression is streamed and stops once the output exceeds the canonical
    file's size; the header is read only after the sha256 matched.

    Args:
        path: an MNIST file (named like ``t10k-images-idx3-ubyte.gz``).
        sha256: expected sha256 of its decompressed content.

    Returns:
        uint8 images (N, 28, 28, 1) for image files, int64 labels (N,) for label files.

    Raises:
        DataIntegrityError: naming the file, for any read, decode or checksum error.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = inflate_idx(f, path.name, str(path), sha256)
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


def read_mnist(
    paths: Mapping[str, Path], digests: Mapping[str, str]
) -> tuple[RawSplit, RawSplit]:
    """The registry's MNIST reader: verified train and test splits.

    Args:
        paths: file name -> path of the four IDX files.
        digests: file name -> sha256 of the decompressed content.
    """

    def split(prefix: str) -> RawSplit:
        images, labels = (
            f"{prefix}-{kind}.gz" for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")
        )
        return RawSplit(
            read_mnist_idx(paths[images], digests[images]),
            read_mnist_idx(paths[labels], digests[labels]),
        )

    return split("train"), split("t10k")


_CIFAR_BATCHES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")
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


def decode_cifar(payload: bytes, name: str, label: str, md5: str) -> RawSplit:
    """Parse a python-version batch without running code; check its content md5."""
    if name not in _CIFAR_BATCHES:
        raise DataIntegrityError(
            f"{label}: not a CIFAR-10 batch {list(_CIFAR_BATCHES)}"
        )
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
    check_digest(label, md5, got, "md5 of the binary-version rows")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return RawSplit(np.ascontiguousarray(images), labels.astype(np.int64))


def check_cifar_batch(payload: bytes, name: str, label: str, md5: str) -> None:
    """Verify one CIFAR-10 batch's bytes (a download) as `read_cifar_batch` does."""
    decode_cifar(payload, name, label, md5)


def read_cifar_batch(path: str | Path, md5: str) -> RawSplit:
    """Decode one CIFAR-10 python-version batch after checking its content md5.

    The pickle is parsed by an unpickler that resolves only numpy's array
    reconstruction (so no code can run) and must be a dict of data, labels and
    optionally batch_label, filenames (as in the official download).

    Args:
        path: a batch file (``data_batch_1`` .. ``data_batch_5``, ``test_batch``).
        md5: expected md5 of its binary-version rows.

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
    return decode_cifar(payload, path.name, str(path), md5)


def read_cifar(
    paths: Mapping[str, Path], digests: Mapping[str, str]
) -> tuple[RawSplit, RawSplit]:
    """The registry's CIFAR-10 reader: verified train (batches 1-5) and test splits.

    Args:
        paths: file name -> path of the six batches.
        digests: file name -> md5 of the binary-version rows.
    """
    batches = [
        read_cifar_batch(paths[f"data_batch_{i}"], digests[f"data_batch_{i}"])
        for i in range(1, 6)
    ]
    train = RawSplit(
        np.concatenate([b.images for b in batches]),
        np.concatenate([b.labels for b in batches]),
    )
    return train, read_cifar_batch(paths["test_batch"], digests["test_batch"])
