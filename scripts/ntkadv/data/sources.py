"""What the workflow needs to know of a dataset's source, in one place.

A config dataset draws its images from a public source (``mnist``, ``cifar10``: files
pinned by digest in `ntkadv.data.raw`) or from the researcher's own file
(``source: file`` with ``path``, `ntkadv.data.userfile`). `source_info` answers, for
either, the image shape, the images per class of each split and the class names; the
config checks (sizes against class counts), the resource estimates (input dimension)
and the figures (class names, through the prepared file's ``class_names`` attribute)
read it from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ntkadv.data.raw import CIFAR10_NAMES, CLASS_COUNTS, INPUT_SHAPES

#: The public sources (raw files, digests and URLs: ntkadv.data.raw / download).
PUBLIC = ("mnist", "cifar10")
#: The source of a researcher's own arrays.
FILE = "file"


@dataclass(frozen=True)
class SourceInfo:
    """Image shape (H, W, C), images per label of each split, one name per label."""

    input_shape: tuple[int, int, int]
    class_counts: Mapping[str, tuple[int, ...]]
    class_names: tuple[str, ...]


def public_info(source: str) -> SourceInfo:
    """`SourceInfo` of a public source ('mnist': digits as names)."""
    names = CIFAR10_NAMES if source == "cifar10" else tuple(str(d) for d in range(10))
    return SourceInfo(INPUT_SHAPES[source], CLASS_COUNTS[source], tuple(names))


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
