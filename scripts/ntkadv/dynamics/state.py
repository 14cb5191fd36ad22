"""Training state between epochs and its exact (de)serialisation for HDF5."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass
class RunState:
    """Mutable training state between epochs (what a checkpoint holds).

    Attributes:
        epoch: number of completed epochs (0 = only initialised).
        params: current parameters (of the linear model once linearised).
        opt_state: optax state.
        lin_params: linearisation point theta_L, or None before linearisation.
    """

    epoch: int
    params: Any
    opt_state: Any
    lin_params: Any = None


@dataclasses.dataclass
class EpochRecord:
    """What one epoch produces: its index, metrics, eNTK matrix and the new state."""

    epoch: int
    metrics: dict[str, float]
    kernel: np.ndarray | None
    state: RunState


def _key_name(path: tuple) -> str:
    """``.a.b.0`` for a pytree key path (dict keys, sequence indices, attributes)."""
    parts = []
    for key in path:
        for attr in ("key", "idx", "name"):
            if hasattr(key, attr):
                parts.append(str(getattr(key, attr)))
                break
        else:
            parts.append(str(key))
    return "".join(f".{p}" for p in parts)


def flatten_tree(tree: Any, prefix: str) -> dict[str, np.ndarray]:
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {f"{prefix}{_key_name(path)}": np.asarray(leaf) for path, leaf in leaves}


def unflatten_tree(arrays: Mapping[str, np.ndarray], template: Any, prefix: str) -> Any:
    paths, treedef = jax.tree_util.tree_flatten_with_path(template)
    leaves = [
        jnp.asarray(arrays[f"{prefix}{_key_name(p)}"], dtype=leaf.dtype)
        for p, leaf in paths
    ]
    return jax.tree_util.tree_unflatten(treedef, leaves)


def state_to_arrays(state: RunState) -> dict[str, np.ndarray]:
    """Flatten a :class:`RunState` into ``name -> array`` (exact, for HDF5)."""
    arrays = {"epoch": np.asarray(state.epoch, dtype=np.int64)}
    arrays |= flatten_tree(state.params, "params")
    arrays |= flatten_tree(state.opt_state, "opt_state")
    if state.lin_params is not None:
        arrays |= flatten_tree(state.lin_params, "lin_params")
    return arrays
