"""The job side of the config: what a rule script needs at run time (no snakemake).

* `canonical`: the canonical form of a params value. Snakemake compares a rule's
  params by their serialised value, and a dict serialises in key order, so the same
  config written with its keys in another order (as YAML tools do) would rerun the
  whole DAG. Every rule's params therefore go through `canonical` (sorted keys,
  tuples as lists, NumPy scalars as Python numbers).
* `settings_from`: typed, validated settings (a frozen dataclass) from a rule's
  params dict: unknown or missing keys fail with the dataclass and key named.
* `ConfigError` / `fail`: the one-line config error, also raised by the stages'
  ``checks`` modules (the canonical architecture order: ntkadv.kernels.families).

Every rule script imports this module (scripts/_common.py), so it is in the code
inputs of every job (ntkadv.sources): it imports no other module of the library.
Reading, merging and checking the config when the workflow is parsed is
``ntkadv.configcheck`` (no job imports it), so editing a check reruns nothing.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


def canonical(value: Any) -> Any:
    """Recursively sorted, JSON-like copy of `value` (see module docstring)."""
    if isinstance(value, Mapping):
        return {str(k): canonical(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def pick(mapping: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    """The sub-dict of `mapping` with exactly `keys` (KeyError names a missing key)."""
    missing = [k for k in keys if k not in mapping]
    if missing:
        raise KeyError(f"missing config key(s) {missing}; have {sorted(mapping)}")
    return {k: mapping[k] for k in keys}


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(value, Mapping):
        return settings_from(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if arg is type(None) and value is None:
                return None
            if dataclasses.is_dataclass(arg) and isinstance(value, Mapping):
                return settings_from(arg, value, where)
        return value
    if origin is tuple and isinstance(value, list | tuple):
        return tuple(value)
    return value


def settings_from(cls: type[T], params: Mapping[str, Any], where: str = "") -> T:
    """Instantiate the dataclass `cls` from `params`, recursing into dataclass fields.

    Args:
        cls: a dataclass type (fields may be dataclasses, optional dataclasses or
            tuples, which are converted from mappings / lists).
        params: the rule's params (or a nested section of them).
        where: dotted location used in error messages.

    Raises:
        TypeError: naming the dataclass and the unknown or missing keys.
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - set(fields))
    required = [
        name
        for name, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    missing = sorted(set(required) - set(params))
    if unknown or missing:
        raise TypeError(
            f"{cls.__name__}{' at ' + where if where else ''}: unknown keys {unknown}, "
            f"missing keys {missing}"
        )
    kwargs = {
        name: _convert(hints[name], value, f"{where}.{name}".strip("."))
        for name, value in params.items()
    }
    return cls(**kwargs)


class ConfigError(ValueError):
    """A config that the schema accepts but that cannot run (the key is named)."""


def fail(key: str, message: str) -> None:
    """Raise `ConfigError` for config key `key` (dotted)."""
    raise ConfigError(f"config key {key}: {message}")
