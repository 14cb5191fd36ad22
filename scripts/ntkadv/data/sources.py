"""The data-source registry: what the workflow knows of each source, in one place.

A config dataset draws its images from a public source (a `PublicSource` entry of
`SOURCES`: ``mnist``, ``cifar10``) or from the researcher's own file (``source: file``
with ``path``, `ntkadv.data.userfile`). An entry holds everything the code needs: the
raw files with their content digests, where they live below a data directory, where to
download them (mirror URLs, or one archive and its digest), the reader that decodes
and verifies them, the image shape, the images per class of each split, the class
names and a display label. The data job (`locate_raw`, `load_raw`), the download job
(`ntkadv.data.download`), the config checks and resource estimates (`source_info`),
the figures (`class_names`, `dataset_label`) and the rules (the download rule's
wildcard constraint, `source_pattern`) all read it from here, so a new public dataset
is one entry of `SOURCES` (plus its config and a test).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ntkadv.data.raw import (
    DataIntegrityError,
    RawSplit,
    check_cifar_batch,
    check_mnist_idx,
    read_cifar,
    read_mnist,
)

#: The source of a researcher's own arrays.
FILE = "file"

#: (file name -> path, file name -> expected digest) -> verified (train, test) splits.
Reader = Callable[[Mapping[str, Path], Mapping[str, str]], tuple[RawSplit, RawSplit]]
#: (payload bytes, file name, label for messages, expected digest) -> None; raises
#: DataIntegrityError naming `label` unless the bytes are the canonical file.
Check = Callable[[bytes, str, str, str], object]


@dataclass(frozen=True)
class Archive:
    """The raw files of a source come in one archive.

    Attributes:
        url: the archive's URL.
        md5: md5 of the archive's bytes.
        folder: the folder of the raw files inside the archive.
    """

    url: str
    md5: str
    folder: str


@dataclass(frozen=True)
class PublicSource:
    """One public dataset source (an entry of `SOURCES`).

    Attributes:
        label: display name in figures ("CIFAR-10").
        subdir: folder of the raw files below a data directory (the layout of
            shared/data); its first component is the source's name, which is the
            download rule's output folder results/raw/{source}.
        files: raw file name -> content digest, as `reader` and `check` verify it.
        reader: decodes and verifies the raw files (`Reader`).
        check: verifies one file's bytes before a download writes it (`Check`).
        input_shape: image shape (H, W, C).
        class_counts: {"train", "test"} -> images per label 0..9; bounds subset sizes.
        class_names: one name per label 0..9.
        urls: mirrors that serve each file at ``<url><file name>`` (tried in order).
        archive: or the one archive that holds the files.
    """

    label: str
    subdir: str
    files: Mapping[str, str]
    reader: Reader
    check: Check
    input_shape: tuple[int, int, int]
    class_counts: Mapping[str, tuple[int, ...]]
    class_names: tuple[str, ...]
    urls: tuple[str, ...] = ()
    archive: Archive | None = None


#: The public sources. Digests are of the *content*, so the copy in shared/data
#: (re-compressed MNIST, CIFAR pickles without ``filenames``) and a fresh download
#: pass the same check: MNIST, sha256 of each decompressed IDX file; CIFAR-10, md5 of
#: the official binary-version rows (1 label byte + 3072 pixel bytes per image)
#: rebuilt from each python-version batch. Class counts: shared/data/README.md.
SOURCES: dict[str, PublicSource] = {
    "mnist": PublicSource(
        label="MNIST",
        subdir="mnist",
        files={
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
        },
        reader=read_mnist,
        check=check_mnist_idx,
        input_shape=(28, 28, 1),
        class_counts={
            "train": (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
            "test": (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
        },
        class_names=tuple(str(d) for d in range(10)),
        urls=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
    ),
    "cifar10": PublicSource(
        label="CIFAR-10",
        subdir="cifar10/cifar-10-batches-py",
        files={
            "data_batch_1": "5dd7e06a14cb22eb9f671a540d1b7c25",
            "data_batch_2": "5ea93a67294ea407fff1d09f752e9692",
            "data_batch_3": "942cd6a4bcdd0dd3c604fbe906cb4421",
            "data_batch_4": "ae636b3ba5c66a11e91e8cb52e771fcb",
            "data_batch_5": "53f37980c15c3d472c316c40844f3f0d",
            "test_batch": "803d5f7f4d78ea53de84dbe85f74fb6d",
        },
        reader=read_cifar,
        check=check_cifar_batch,
        input_shape=(32, 32, 3),
        class_counts={"train": (5000,) * 10, "test": (1000,) * 10},
        class_names=(  # batches.meta
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
        ),
        archive=Archive(
            url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
            md5="c58f30108f718f92721af3b95e74349a",
            folder="cifar-10-batches-py",
        ),
    ),
}


def public_source(source: str) -> PublicSource:
    """The registry entry of `source`.

    Raises:
        ValueError: naming the registered sources.
    """
    if source not in SOURCES:
        raise ValueError(
            f"unknown data source '{source}' (registered: {', '.join(SOURCES)}; "
            f"or '{FILE}' for a file of your own)"
        )
    return SOURCES[source]


def source_pattern() -> str:
    """Regex alternation of the public sources' names (the download rule's
    ``{source}`` wildcard constraint)."""
    return "|".join(re.escape(name) for name in SOURCES)


@dataclass(frozen=True)
class SourceInfo:
    """Image shape (H, W, C), images per label of each split, one name per label."""

    input_shape: tuple[int, int, int]
    class_counts: Mapping[str, tuple[int, ...]]
    class_names: tuple[str, ...]


def public_info(source: str) -> SourceInfo:
    """`SourceInfo` of a public source."""
    entry = public_source(source)
    return SourceInfo(entry.input_shape, entry.class_counts, entry.class_names)


def user_path(spec: Mapping[str, Any], base_dir: str | Path = ".") -> Path:
    """The file of a ``source: file`` dataset, relative paths against `base_dir`."""
    path = Path(spec["path"])
    return path if path.is_absolute() else Path(base_dir) / path


def source_info(spec: Mapping[str, Any], base_dir: str | Path = ".") -> SourceInfo:
    """`SourceInfo` of a config dataset entry (reads and validates a user file).

    Raises:
        ntkadv.data.raw.DataIntegrityError: the user file is missing or malformed.
    """
    if spec["source"] != FILE:
        return public_info(spec["source"])
    from ntkadv.data import userfile

    data = userfile.load(user_path(spec, base_dir))
    return SourceInfo(data.input_shape, data.class_counts, data.class_names)


def class_names(source: str, classes: Sequence[int]) -> list[str]:
    """Display names of raw labels `classes` of `source`, in the given order (a
    user file's source, whose names travel in the prepared file: the labels)."""
    if source in SOURCES:
        return [SOURCES[source].class_names[int(c)] for c in classes]
    return [str(int(c)) for c in classes]


def dataset_label(dataset: str, source: str) -> str:
    """Display name of config dataset `dataset` drawn from `source`: the source's
    label (any config name of an MNIST subset reads "MNIST"), else the name."""
    return SOURCES[source].label if source in SOURCES else dataset


def raw_relpaths(source: str) -> list[str]:
    """Paths of the raw files of `source` relative to a data directory."""
    entry = public_source(source)
    return [f"{entry.subdir}/{name}" for name in entry.files]


def locate_raw(
    source: str, search_dirs: Sequence[str | Path]
) -> dict[str, Path | None]:
    """Find each raw file of `source` in the first directory that has it.

    Args:
        source: a public source (a key of `SOURCES`).
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
                f"directories that hold {public_source(source).subdir}/"
            )
    found: dict[str, Path | None] = {}
    for rel in raw_relpaths(source):
        hits = [Path(d) / rel for d in search_dirs if (Path(d) / rel).is_file()]
        found[rel] = hits[0].resolve() if hits else None
    return found


def load_raw(source: str, files: Mapping[str, Path]) -> tuple[RawSplit, RawSplit]:
    """Load and verify the full train and test splits of `source` (its reader).

    Args:
        source: a public source (a key of `SOURCES`).
        files: any keys -> paths, covering every raw file of the source by name.
    """
    entry = public_source(source)
    paths = {Path(p).name: Path(p) for p in files.values()}
    missing = sorted(set(entry.files) - set(paths))
    if missing:
        raise DataIntegrityError(f"missing raw {source} file(s): {missing}")
    return entry.reader({n: paths[n] for n in entry.files}, entry.files)


def raw_checksums(source: str) -> dict[str, str]:
    """Expected content checksum of each raw file of `source` (provenance)."""
    return dict(public_source(source).files)
