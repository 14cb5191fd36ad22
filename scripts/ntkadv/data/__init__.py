"""Stage 1: verified MNIST / CIFAR-10 and model-ready subsets (NumPy only).

Modules: `raw` (locate, verify and safely decode the raw files), `download` (the
canonical URLs, same verification), `subsets` (selection, targets, rule
prepare_dataset), `sources` and `userfile` (a dataset file of the user's). The names
below are re-exported for convenience and loaded on first access (PEP 562), as in
the package's own face: ``from ntkadv.data import load_prepared`` imports
`subsets` only, so a job's code inputs (ntkadv.sources, which reads `_API`) hold
the modules it uses and an edit to `download` reruns only the download job.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> the module defining it (read statically by ntkadv.sources).
_API = {
    "download_raw": "ntkadv.data.download",
    "CIFAR10_FILES": "ntkadv.data.raw",
    "CIFAR10_NAMES": "ntkadv.data.raw",
    "CLASS_COUNTS": "ntkadv.data.raw",
    "INPUT_SHAPES": "ntkadv.data.raw",
    "MNIST_FILES": "ntkadv.data.raw",
    "RAW_FILES": "ntkadv.data.raw",
    "RAW_SUBDIR": "ntkadv.data.raw",
    "DataIntegrityError": "ntkadv.data.raw",
    "RawSplit": "ntkadv.data.raw",
    "load_raw": "ntkadv.data.raw",
    "locate_raw": "ntkadv.data.raw",
    "raw_checksums": "ntkadv.data.raw",
    "raw_relpaths": "ntkadv.data.raw",
    "read_cifar_batch": "ntkadv.data.raw",
    "read_mnist_idx": "ntkadv.data.raw",
    "encode_targets": "ntkadv.data.subsets",
    "load_prepared": "ntkadv.data.subsets",
    "make_subset": "ntkadv.data.subsets",
    "prepare": "ntkadv.data.subsets",
    "select_indices": "ntkadv.data.subsets",
}
_SUBMODULES = ("download", "raw", "sources", "subsets", "userfile")
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"ntkadv.data.{name}")
    raise AttributeError(f"module 'ntkadv.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*_API, *_SUBMODULES])
