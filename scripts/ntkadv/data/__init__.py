"""Stage 1: verified MNIST / CIFAR-10 and model-ready subsets (NumPy only).

Modules: `raw` (locate, verify and safely decode the raw files), `download` (the
canonical URLs, same verification), `subsets` (selection, targets, rule
prepare_dataset). The names below are re-exported for convenience.
"""

from ntkadv.data.download import download_raw
from ntkadv.data.raw import (
    CIFAR10_FILES,
    CIFAR10_NAMES,
    CLASS_COUNTS,
    INPUT_SHAPES,
    MNIST_FILES,
    RAW_FILES,
    RAW_SUBDIR,
    DataIntegrityError,
    RawSplit,
    load_raw,
    locate_raw,
    raw_checksums,
    raw_relpaths,
    read_cifar_batch,
    read_mnist_idx,
)
from ntkadv.data.subsets import (
    encode_targets,
    load_prepared,
    make_subset,
    prepare,
    select_indices,
)

__all__ = [
    "CIFAR10_FILES",
    "CIFAR10_NAMES",
    "CLASS_COUNTS",
    "INPUT_SHAPES",
    "MNIST_FILES",
    "RAW_FILES",
    "RAW_SUBDIR",
    "DataIntegrityError",
    "RawSplit",
    "download_raw",
    "encode_targets",
    "load_prepared",
    "load_raw",
    "locate_raw",
    "make_subset",
    "prepare",
    "raw_checksums",
    "raw_relpaths",
    "read_cifar_batch",
    "read_mnist_idx",
    "select_indices",
]
