"""Stage 1: verified public datasets and model-ready subsets (NumPy only).

Modules: `sources` (the data-source registry: raw files, digests, URLs, reader,
shape, classes of each public source; locating and loading raw files), `raw` (the
safe readers of MNIST / CIFAR-10 files), `download` (fetch from the registry's URLs,
same verification), `subsets` (selection, targets), `task` (the rules' tasks),
`userfile` (a dataset file of the user's). The names below are re-exported for
convenience and loaded on first access (PEP 562), as in the package's own face:
``from ntkadv.data import load_prepared`` imports `subsets` (and `raw`) only, so a
job's code inputs (ntkadv.sources, which reads `_API`) hold the modules it uses and
an edit to `download` reruns only the download job.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> the module defining it (read statically by ntkadv.sources).
_API = {
    "download_raw": "ntkadv.data.download",
    "DataIntegrityError": "ntkadv.data.raw",
    "RawSplit": "ntkadv.data.raw",
    "read_cifar_batch": "ntkadv.data.raw",
    "read_mnist_idx": "ntkadv.data.raw",
    "SOURCES": "ntkadv.data.sources",
    "PublicSource": "ntkadv.data.sources",
    "load_raw": "ntkadv.data.sources",
    "locate_raw": "ntkadv.data.sources",
    "public_source": "ntkadv.data.sources",
    "raw_checksums": "ntkadv.data.sources",
    "raw_relpaths": "ntkadv.data.sources",
    "encode_targets": "ntkadv.data.subsets",
    "load_prepared": "ntkadv.data.subsets",
    "make_subset": "ntkadv.data.subsets",
    "select_indices": "ntkadv.data.subsets",
}
_SUBMODULES = ("download", "raw", "sources", "subsets", "task", "userfile")
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"ntkadv.data.{name}")
    raise AttributeError(f"module 'ntkadv.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*_API, *_SUBMODULES])
