"""Null controls computed in the same run as the paper's statistic.

* Permuted training labels on the same cached kernel (findings 1-4, 6, 7): only Y
  changes, so the Gram matrix, its eigendecomposition and the input-Jacobian cache
  are reused. Permutation j of a run is drawn from ``default_rng([seed, STREAM, j])``
  with the config seed, so a run is reproducible and the negative-control config
  (datasets.<name>.permute_labels, drawn from stream `DATA_STREAM`) never shares a
  permutation with the controls.
* Random-sign perturbations of the same ℓ∞ size (findings 5, 6): the accuracy a
  label-blind perturbation of size ε leaves, against which an attack must do better.
* Mismatched pairs (finding 5): the cosine of gradients of *different* test points.
"""

from __future__ import annotations

import numpy as np

#: RNG stream of the null-control permutations (see module docstring).
STREAM = 7
#: RNG stream of the negative-control config's label permutation (prepare_dataset).
DATA_STREAM = 11


def label_permutations(n: int, count: int, seed: int) -> np.ndarray:
    """`count` permutations of range(n), (count, n) int64, from the config seed."""
    return (
        np.stack(
            [
                np.random.default_rng([seed, STREAM, j]).permutation(n)
                for j in range(count)
            ]
        ).astype(np.int64)
        if count
        else np.zeros((0, n), dtype=np.int64)
    )


def data_permutation(n: int, seed: int) -> np.ndarray:
    """The training-label permutation of the negative-control config, (n,) int64."""
    return np.random.default_rng([seed, DATA_STREAM]).permutation(n).astype(np.int64)


def random_signs(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Uniform ±1 directions (float64) for the random-sign perturbation control."""
    rng = np.random.default_rng([seed, STREAM, 10**6])
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0)


def mismatched(m: int) -> np.ndarray:
    """A derangement of range(m) (index i -> i + 1 mod m), for mismatched pairs."""
    if m < 2:
        raise ValueError("mismatched pairs need at least 2 points")
    return (np.arange(m) + 1) % m
