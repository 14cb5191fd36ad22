"""Config helpers shared by the workflow and the rule scripts (no snakemake here).

* `canonical`: the canonical form of a params value. Snakemake compares a rule's
  params by their serialised value, and a dict serialises in key order, so the same
  config written with its keys in another order (as YAML tools do) would rerun the
  whole DAG. Every rule's params therefore go through `canonical` (sorted keys,
  tuples as lists, NumPy scalars as Python numbers).
* `settings_from`: typed, validated settings (a frozen dataclass) from a rule's
  params dict: unknown or missing keys fail with the dataclass and key named.
"""

from __future__ import annotations

import dataclasses
import re
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


def check_config(config: Mapping[str, Any]) -> None:
    """Cross-section checks JSON Schema cannot express; run before any job starts.

    The shared checks are here; each stage adds its own in ``ntkadv.<stage>.checks``
    (`STAGE_CHECKS`), which raise `ConfigError` through `fail`.

    Args:
        config: the validated config (defaults filled in).

    Raises:
        ConfigError: naming the offending key.
    """
    import importlib

    datasets = config["datasets"]
    kernel_ds = config["kernels"]["datasets"]
    for name in kernel_ds:
        if name not in datasets:
            fail(
                "kernels.datasets",
                f"unknown dataset '{name}' (defined: {sorted(datasets)})",
            )
    from ntkadv.data.raw import DataIntegrityError
    from ntkadv.data.sources import source_info

    for name, spec in datasets.items():
        if spec["source"] == "file" and "path" not in spec:
            fail(f"datasets.{name}.path", "source 'file' needs the file's path")
        try:
            counts = source_info(spec).class_counts
        except DataIntegrityError as err:
            fail(f"datasets.{name}.path", str(err))
        for split in ("train", "test"):
            have = sum(counts[split][c] for c in spec["classes"])
            if spec[f"n_{split}"] > have:
                fail(
                    f"datasets.{name}.n_{split}",
                    f"{spec[f'n_{split}']} exceeds the {have} {split} images of "
                    f"{spec['source']} classes {spec['classes']}",
                )
    pred = config["predictor"]
    if pred["tau_log10_min"] > pred["tau_log10_max"]:
        fail(
            "predictor.tau_log10_min",
            f"{pred['tau_log10_min']} > tau_log10_max {pred['tau_log10_max']}",
        )
    for stage in STAGE_CHECKS:
        importlib.import_module(f"ntkadv.{stage}.checks").check(config)


#: Stages with a ``checks.check(config)`` of their own, in paper order.
STAGE_CHECKS = ("attacks", "transfer", "features", "dynamics")


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `overlay` merged in recursively (overlay wins; mappings merge).

    An empty mapping in `overlay` replaces the base's (``dynamics: {datasets: {}}``
    disables the stage); a non-empty one is merged key by key.
    """
    out = dict(base)
    for key, value in overlay.items():
        if value and isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def resolve_extends(config: dict[str, Any], project_dir: str) -> dict[str, Any]:
    """Apply a config's ``extends: <file>`` chain (``ntkadv.configcheck``, which
    reads every file strictly; kept here for the tests and benchmarks that load a
    shipped config)."""
    from ntkadv.configcheck import resolve_extends as resolve

    return resolve(config, project_dir)


#: A float written without a dot (``1e-2``): YAML 1.1 (PyYAML) reads it as a string.
_FLOAT_WITHOUT_DOT = re.compile(r"^[-+]?\d+[eE][-+]?\d+$")


def coerce_floats(node: Any) -> Any:
    """Config with YAML-1.1 strings such as ``'1e-2'`` turned into floats.

    PyYAML reads ``1e-2`` (no dot) as a string; every such value in this config is
    meant as a number (no string key accepts that form), so it is converted before
    validation instead of failing with a confusing type error.
    """
    if isinstance(node, dict):
        return {k: coerce_floats(v) for k, v in node.items()}
    if isinstance(node, list):
        return [coerce_floats(v) for v in node]
    if isinstance(node, str) and _FLOAT_WITHOUT_DOT.match(node):
        return float(node)
    return node


def schema_errors(config: Mapping[str, Any], schema_path: str) -> list[str]:
    """One line per schema violation: the dotted key and what is wrong.

    (Snakemake's own validation error prints the whole schema.)
    """
    import jsonschema
    import yaml

    with open(schema_path) as f:
        schema = yaml.safe_load(f)
    validator = jsonschema.Draft202012Validator(schema)
    out = []
    for err in sorted(validator.iter_errors(config), key=lambda e: list(e.path)):
        key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        out.append(f"config key {key}: {err.message}")
    return out
