"""Model-ready subsets of the raw splits (paper conventions; rule prepare_dataset,
`ntkadv.data.task`).

Pixels / 255 in [0, 1]; binary tasks (e.g. CIFAR-10 airplane vs automobile, supp.
App. C/D) use targets -1 (first class) / +1 (second class) with shape (n, 1);
multiclass tasks use one-hot targets of shape (n, k).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ntkadv.data.raw import RawSplit


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

    uint8 images are divided by 255; floating-point images (a user file's, already
    in [0, 1]) are kept as they are.

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
        x = raw.images[idx]  # uint8 pixels, or a user file's floats in [0, 1]
        scale = 255.0 if x.dtype == np.uint8 else 1.0
        out[f"x_{split}"] = x.astype(np.float32) / np.float32(scale)
        out[f"y_{split}"] = targets
        out[f"labels_{split}"] = labels
        out[f"index_{split}"] = idx
    return out


def permute_training_labels(arrays: dict[str, np.ndarray], seed: int) -> np.ndarray:
    """Negative control: permute y_train / labels_train in place (images stay).

    The permutation comes from `ntkadv.claims.nulls.data_permutation` (config seed,
    its own RNG stream). Returns it; it is stored as ``label_permutation``.
    """
    from ntkadv.claims.nulls import data_permutation

    perm = data_permutation(len(arrays["labels_train"]), seed)
    arrays["y_train"] = arrays["y_train"][perm]
    arrays["labels_train"] = arrays["labels_train"][perm]
    arrays["label_permutation"] = perm
    return perm


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
