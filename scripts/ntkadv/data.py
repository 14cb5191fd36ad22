"""Real MNIST and CIFAR-10: locate, verify, decode and subset the raw files.

The canonical files are identified by *content* checksums, so the copy in
``shared/data`` (re-compressed MNIST, CIFAR pickles without ``filenames``) and a
fresh download pass the same check:

- MNIST: sha256 of each decompressed IDX file.
- CIFAR-10: md5 of the official *binary version* rows (1 label byte + 3072 pixel
  bytes per image) rebuilt from each python-version batch.

Model-ready subsets follow the paper's conventions: pixels / 255 in [0, 1];
binary tasks (e.g. CIFAR-10 airplane vs automobile, supp. App. C/D) use targets
-1 (first class) / +1 (second class) with shape (n, 1); multiclass tasks use
one-hot targets of shape (n, k).
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

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
    """A raw data file is missing, unreadable or has the wrong content checksum."""


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

    Returns:
        relative path -> absolute path found, or None where no directory has it.
    """
    found: dict[str, Path | None] = {}
    for rel in raw_relpaths(source):
        hits = [Path(d) / rel for d in search_dirs if (Path(d) / rel).is_file()]
        found[rel] = hits[0].resolve() if hits else None
    return found


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check(path: Path, expected: str, got: str, what: str) -> None:
    if got != expected:
        raise DataIntegrityError(
            f"{path}: {what} is {got}, expected {expected} - the file is corrupt or "
            "not the canonical one; delete it (or fix data.search_dirs) and rerun"
        )


def read_mnist_idx(path: str | Path) -> np.ndarray:
    """Decode one gzip IDX file after checking its content sha256.

    Returns:
        uint8 images (N, 28, 28, 1) for image files, int64 labels (N,) for label files.
    """
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise DataIntegrityError(f"{path}: not a readable gzip file ({err})") from err
    _check(path, MNIST_FILES[path.name], _sha256(raw), "sha256 of the IDX content")
    magic = int.from_bytes(raw[:4], "big")
    count = int.from_bytes(raw[4:8], "big")
    if magic == 2051:
        rows, cols = (int.from_bytes(raw[i : i + 4], "big") for i in (8, 12))
        return np.frombuffer(raw, np.uint8, offset=16).reshape(count, rows, cols, 1)
    return np.frombuffer(raw, np.uint8, offset=8).astype(np.int64)


def read_cifar_batch(path: str | Path) -> RawSplit:
    """Decode one CIFAR-10 python-version batch after checking its content md5.

    Returns:
        RawSplit with uint8 images (10000, 32, 32, 3) HWC and int64 labels (10000,).
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        data = np.asarray(batch[b"data"], np.uint8)
        labels = np.asarray(batch[b"labels"], np.uint8)
    except (OSError, pickle.UnpicklingError, KeyError, EOFError, ValueError) as err:
        raise DataIntegrityError(f"{path}: not a CIFAR-10 batch ({err})") from err
    rows = np.concatenate([labels[:, None], data], axis=1)
    got = hashlib.md5(rows.tobytes()).hexdigest()
    _check(path, CIFAR10_FILES[path.name], got, "md5 of the binary-version rows")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return RawSplit(np.ascontiguousarray(images), labels.astype(np.int64))


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


def select_indices(
    labels: np.ndarray, classes: Sequence[int], n: int, selection: str, seed: int
) -> np.ndarray:
    """Indices of `n` examples whose label is in `classes`, in increasing order.

    Args:
        labels: raw labels (N,).
        classes: kept classes.
        n: subset size; must not exceed the number of eligible examples.
        selection: "first" = the first n eligible examples in file order (the
            authors' notebook); "random" = n drawn without replacement by
            ``numpy.random.default_rng(seed)``, then sorted.
        seed: seed of the random selection.

    Returns:
        int64 indices (n,) into `labels`.
    """
    eligible = np.flatnonzero(np.isin(labels, np.asarray(classes)))
    if n > eligible.size:
        raise ValueError(
            f"asked for {n} examples of classes {list(classes)}, only "
            f"{eligible.size} exist"
        )
    if selection == "first":
        return eligible[:n].astype(np.int64)
    if selection == "random":
        rng = np.random.default_rng(seed)
        return np.sort(rng.choice(eligible, size=n, replace=False)).astype(np.int64)
    raise ValueError(f"unknown selection '{selection}' (use 'first' or 'random')")


def encode_targets(
    labels: np.ndarray, classes: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Map raw labels to class indices and regression targets.

    Returns:
        (index (n,) int64 in 0..len(classes)-1, targets float32). Binary:
        targets (n, 1) with -1 for classes[0] and +1 for classes[1]. Otherwise
        one-hot (n, len(classes)).
    """
    lookup = {c: i for i, c in enumerate(classes)}
    index = np.array([lookup[int(c)] for c in labels], dtype=np.int64)
    if len(classes) == 2:
        return index, (2.0 * index - 1.0).astype(np.float32)[:, None]
    return index, np.eye(len(classes), dtype=np.float32)[index]


def make_subset(
    train: RawSplit,
    test: RawSplit,
    classes: Sequence[int],
    n_train: int,
    n_test: int,
    selection: str,
    seed: int,
) -> dict[str, np.ndarray]:
    """Model-ready arrays of a subset: pixels / 255 (float32), targets, indices.

    Train and test selections use seeds `seed` and `seed + 1`.

    Returns:
        x_train (n, H, W, C), y_train (n, k), labels_train (n,), index_train (n,)
        and the same for test.
    """
    out: dict[str, np.ndarray] = {}
    for split, raw, n, s in (
        ("train", train, n_train, seed),
        ("test", test, n_test, seed + 1),
    ):
        idx = select_indices(raw.labels, classes, n, selection, s)
        labels, targets = encode_targets(raw.labels[idx], classes)
        out[f"x_{split}"] = raw.images[idx].astype(np.float32) / 255.0
        out[f"y_{split}"] = targets
        out[f"labels_{split}"] = labels
        out[f"index_{split}"] = idx
    return out


def raw_checksums(source: str) -> dict[str, str]:
    """Expected content checksum of each raw file of `source` (provenance)."""
    return dict(RAW_FILES[source])


def _fetch(url: str, timeout: float = 60.0) -> bytes:
    import urllib.request

    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
        return response.read()


def _write_atomic(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_bytes(payload)
    tmp.replace(path)


def download_raw(source: str, data_dir: str | Path, fetch=_fetch) -> list[Path]:
    """Download the raw files of `source` into `data_dir` (shared/data layout).

    Every file is verified (content checksum) before it is moved into place, so an
    interrupted or corrupted download leaves nothing behind.

    Args:
        source: "mnist" or "cifar10".
        data_dir: destination data directory (e.g. results/raw).
        fetch: url -> bytes (injectable for tests).

    Returns:
        Paths of the raw files.

    Raises:
        DataIntegrityError: naming the file, the URLs tried and the expected
            checksum when a file cannot be fetched or does not verify.
    """
    import io
    import tarfile

    dest = Path(data_dir) / RAW_SUBDIR[source]
    if source == "mnist":
        for name, sha in MNIST_FILES.items():
            errors = []
            for base in MNIST_URLS:
                try:
                    payload = fetch(base + name)
                    _check(
                        Path(base + name),
                        sha,
                        _sha256(gzip.decompress(payload)),
                        "sha256 of the IDX content",
                    )
                    _write_atomic(dest / name, payload)
                    break
                except Exception as err:  # noqa: BLE001 - try the next mirror
                    errors.append(f"{base + name}: {err}")
            else:
                raise DataIntegrityError(
                    f"could not obtain MNIST file '{name}' (content sha256 {sha}); "
                    f"tried {errors}. Offline? Put the file in mnist/ under one of "
                    "data.search_dirs."
                )
        return [dest / name for name in MNIST_FILES]
    try:
        payload = fetch(CIFAR10_URL)
    except Exception as err:  # noqa: BLE001
        raise DataIntegrityError(
            f"could not download CIFAR-10 archive {CIFAR10_URL} ({err}); it provides "
            f"{sorted(CIFAR10_FILES)} (binary-row md5s {CIFAR10_FILES}). Offline? Put "
            "them in cifar10/cifar-10-batches-py/ under one of data.search_dirs."
        ) from err
    _check(Path(CIFAR10_URL), CIFAR10_TAR_MD5, hashlib.md5(payload).hexdigest(), "md5")
    with tarfile.open(fileobj=io.BytesIO(payload), mode="r:gz") as tar:
        for name in CIFAR10_FILES:
            member = tar.extractfile(f"cifar-10-batches-py/{name}")
            _write_atomic(dest / name, member.read())
            read_cifar_batch(dest / name)  # verifies the content md5
    return [dest / name for name in CIFAR10_FILES]


def load_prepared(path: str | Path) -> dict:
    """Read a model-ready dataset file (rule prepare_dataset) with its attrs.

    Returns:
        The arrays (x_train, y_train, labels_train, index_train, and test) plus
        key "attrs" with the file attributes (task, classes, source, ...).
    """
    from ntkadv import h5io

    out: dict = h5io.read(path)
    out["attrs"] = h5io.read_attrs(path)
    return out
