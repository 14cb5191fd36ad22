"""Parse-time config loading and checks (the Snakefile's; no job imports this).

Every mistake here is a one-line `ConfigError` (``config key <key>: <what>`` or
``config file <file>, line <n>: <what>``) raised before any job starts:

* `load_yaml`: a strict YAML reader (`StrictLoader`). It refuses aliases (``*a``,
  hence also merge keys ``<<: *a``): a 1 KB file of nested aliases otherwise
  expands to millions of leaves in every walk of the config (coerce_floats, the
  schema, the params); without aliases the config's size is the file's size. It
  also refuses a key given twice in one mapping (PyYAML keeps the last silently),
  naming the dotted key and both lines, and nesting deeper than `MAX_DEPTH`.
  (Snakemake reads a ``--configfile`` once itself before the Snakefile runs: a list
  of aliases costs it nothing, but it merges nested mappings by copying them, so a
  mapping alias bomb costs it ~3 s per 10^6 leaves before this refusal is reached.)
* `load_config`: the config of a run: the config files in order (config.yaml by
  default, or the ``--configfile`` files, which replace it), each file's
  ``extends:`` chain, then the ``--config key=value`` entries, each value read as
  YAML (typed: ``seed=1`` an int, ``transfer={lr: 0.02}`` a mapping with a float),
  merged over the keys they name (`deep_merge`); YAML-1.1 strings such as
  ``1e-2`` become floats (`coerce_floats`).
* `check_finite`: no NaN or infinity anywhere (JSON Schema's ``minimum`` and
  ``exclusiveMinimum`` accept NaN; no key of this config means a non-finite number).
* `schema_errors`: one line per JSON Schema violation.
* `check_references`: every key that names an architecture or a dataset names one
  that the config defines; the keys are marked ``x-refers-to: <collection>`` in
  the schema, so a new name-holding key is checked once it is marked (a unit test
  checks that every ``arch``/``dataset`` key of the schema is marked).
* `check_config`: the cross-section checks JSON Schema cannot express, with each
  stage's own ``ntkadv.<stage>.checks.check`` (`STAGE_CHECKS`).

ntkadv.config keeps what jobs need at run time (typed settings, canonical params,
`ConfigError`); no rule script imports this module, so none of its code is in a
job's code inputs (ntkadv.sources) and editing a check reruns no job.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import yaml

from ntkadv.config import ConfigError, fail

#: Deepest nesting of mappings / lists accepted in a config file (this config's
#: schema is 5 levels deep; deeper input would only exhaust the parser's recursion).
MAX_DEPTH = 32


class StrictLoader(yaml.SafeLoader):
    """SafeLoader without aliases, duplicate keys or deep nesting (module docstring).

    Aliases are refused when the node graph is composed, so nothing is ever
    expanded; duplicate keys are found on the composed node tree (`_duplicates`),
    before any value is constructed. Errors start with `name` ("config file x.yaml"
    or "config key k (--config)"); `root` is the dotted key the document is the
    value of.
    """

    def __init__(self, stream: Any, name: str = "config", root: str = ""):
        super().__init__(stream)
        self.config_name = name
        self.root = root
        self._depth = 0

    def compose_document(self) -> Any:
        node = super().compose_document()
        _duplicates(node, self.root, self.config_name)
        return node

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise ConfigError(
                f"{self.config_name}, line {event.start_mark.line + 1}: "
                f"YAML alias *{event.anchor} refused (aliases and merge keys are not "
                "allowed in config files; write the value out)"
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise ConfigError(
                    f"{self.config_name}, line {mark.line + 1}: nested "
                    f"deeper than {MAX_DEPTH} levels"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


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

    with open(schema_path) as f:
        schema = yaml.safe_load(f)
    validator = jsonschema.Draft202012Validator(schema)
    out = []
    for err in sorted(validator.iter_errors(config), key=lambda e: list(e.path)):
        key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        out.append(f"config key {key}: {err.message}")
    return out


def _duplicates(node: yaml.Node, path: str, name: str) -> None:
    """Raise on the first mapping key given twice under `node` (dotted path, lines)."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(f"{name}, line {line}: a key must be a plain name")
            key = key_node.value
            where = f"{path}.{key}" if path else str(key)
            if key in seen:
                raise ConfigError(
                    f"{name}, line {line}: duplicate key {where} (first "
                    f"given on line {seen[key]}; YAML would keep only the last)"
                )
            seen[key] = line
            _duplicates(value_node, where, name)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _duplicates(item, f"{path}.{i}" if path else str(i), name)


def load_yaml(text: str, name: str, root: str = "") -> Any:
    """The YAML document `text` read by `StrictLoader`.

    Args:
        text: the document.
        name: where it comes from, starting every error ("config file x.yaml").
        root: dotted key the document is the value of (for ``--config k=...``).

    Raises:
        ConfigError: an alias, a duplicate key, too deep nesting or a YAML syntax
            error, naming the file and line.
    """
    loader = StrictLoader(text, name, root)
    try:
        try:
            return loader.get_single_data()
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            line = f", line {mark.line + 1}" if mark else ""
            problem = err.problem or err.context or "invalid YAML"
            raise ConfigError(f"{name}{line}: not valid YAML ({problem})") from None
        except yaml.YAMLError as err:
            msg = " ".join(str(err).split())
            raise ConfigError(f"{name}: not valid YAML ({msg})") from None
    finally:
        loader.dispose()


class _JsonDuplicate(ValueError):
    """A key given twice in one JSON object (the key is the message)."""


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _JsonDuplicate(key)
        out[key] = value
    return out


def load_config_file(path: str, key: str | None = None) -> dict[str, Any]:
    """A config file (JSON, else YAML) that must hold a mapping (empty file: {}).

    JSON is tried first, as Snakemake does; its duplicate keys are refused too (a
    NaN it reads is left to `check_finite`, which names the key).

    Args:
        path: the file.
        key: the config key that named the file (``extends``), if any: errors then
            start with ``config key <key>``.

    Raises:
        ConfigError: naming the file (and `key`) if it is missing, unreadable, not
            valid YAML or not a mapping.
    """
    prefix = f"config key {key}: " if key else ""
    if not os.path.isfile(path):
        raise ConfigError(f"{prefix}no such file {path}")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{prefix}cannot read {path} ({err})") from None
    try:  # JSON first, as Snakemake (YAML would refuse a tab-indented JSON file)
        data = json.loads(text, object_pairs_hook=_json_object)
    except json.JSONDecodeError:
        try:
            data = load_yaml(text, f"config file {path}")
        except ConfigError as err:
            raise ConfigError(f"{prefix}{err}") from None
    except _JsonDuplicate as err:
        raise ConfigError(
            f"{prefix}config file {path}: duplicate key {err} (JSON would keep only "
            "the last)"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{prefix}config file {path} is not a mapping of config keys (it is "
            f"a YAML {type(data).__name__})"
        )
    return data


def resolve_extends(config: dict[str, Any], project_dir: str) -> dict[str, Any]:
    """Apply a config's ``extends: <file>`` (relative to the project directory).

    A config may name a base config and hold only what differs from it (e.g.
    config/null.yaml is config.yaml with permuted training labels). Bases may extend
    further bases. Returns the merged config (without the key).

    Raises:
        ConfigError: ``config key extends: ...`` naming the file if it is not a
            string, missing, not YAML, not a mapping, or part of a cycle.
    """
    seen: list[str] = []
    while "extends" in config:
        name = config.pop("extends")
        if not isinstance(name, str) or not name:
            raise ConfigError(
                f"config key extends: {name!r} is not a file name (a path relative "
                "to the project directory)"
            )
        path = os.path.normpath(os.path.join(project_dir, name))
        if path in seen:
            raise ConfigError(f"config key extends: cycle {' -> '.join([*seen, path])}")
        seen.append(path)
        config = deep_merge(load_config_file(path, key="extends"), config)
    return config


def parse_config_args(entries: Iterable[str] | None) -> dict[str, Any]:
    """``--config key=value`` entries as a mapping, each value read as YAML.

    Snakemake reads a nested value with YAML's BaseLoader, so ``transfer={lr:
    0.02}`` would arrive with the string ``'0.02'``; here every value is read by
    `StrictLoader`, exactly as if it were written in a config file (an empty value
    is null). A later entry for the same key wins, as in Snakemake.

    Raises:
        ConfigError: naming the key of an entry without ``=`` or with bad YAML.
    """
    out: dict[str, Any] = {}
    for entry in entries or ():
        key, sep, value = str(entry).partition("=")
        if not sep or not key:
            raise ConfigError(f"--config {entry}: expected key=value")
        name = f"config key {key} (--config)"
        out[key] = load_yaml(value, name, root=key) if value else None
    return out


def load_config(
    files: Sequence[str], config_args: Iterable[str] | None, project_dir: str
) -> dict[str, Any]:
    """The run's config: `files` merged in order, then the ``--config`` entries.

    Each file's ``extends:`` chain is resolved before the next file is merged
    (`resolve_extends`), and YAML-1.1 strings such as ``1e-2`` become floats
    (`coerce_floats`).

    Args:
        files: config files in the order given (config.yaml if none was given on
            the command line: ``--configfile`` replaces it).
        config_args: the raw ``--config key=value`` entries (or None).
        project_dir: directory that ``extends:`` paths are relative to.

    Raises:
        ConfigError: one line naming the file, line or key (see `load_config_file`,
            `resolve_extends`, `parse_config_args`).
    """
    config: dict[str, Any] = {}
    for path in files:
        config = deep_merge(
            config, resolve_extends(load_config_file(str(path)), project_dir)
        )
    overrides = parse_config_args(config_args)
    if "extends" in overrides:
        config = resolve_extends(
            {**config, "extends": overrides.pop("extends")}, project_dir
        )
    return coerce_floats(deep_merge(config, overrides))


def _leaves(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _leaves(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list | tuple):
        for i, value in enumerate(node):
            yield from _leaves(value, f"{path}.{i}" if path else str(i))
    else:
        yield path, node


def check_finite(config: Mapping[str, Any]) -> None:
    """Fail on the first NaN or infinite number anywhere in `config` (its dotted key).

    Raises:
        ConfigError: ``config key transfer.lr: nan is not a finite number``.
    """
    for path, value in _leaves(config):
        if isinstance(value, float) and not math.isfinite(value):
            fail(path, f"{value} is not a finite number")


def _collection(config: Mapping[str, Any], dotted: str) -> list[str] | None:
    """Names defined by the config at `dotted`: a mapping's keys or a list's items
    (None if that key is missing or null: nothing is checked against it)."""
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    if isinstance(node, Mapping):
        return [str(k) for k in node]
    if isinstance(node, list):
        return [str(v) for v in node]
    return None


def references(
    schema: Mapping[str, Any], config: Any, path: str = ""
) -> Iterator[tuple[str, str, list[str]]]:
    """(dotted key, collection, names) of every ``x-refers-to`` key set in `config`.

    `schema` is the config's JSON Schema. A key marked ``x-refers-to: <collection>``
    holds a name or a list of names; ``propertyNames: {x-refers-to: ...}`` marks a
    mapping whose keys are names. A section marked ``x-enabled-by: <key>`` is
    skipped while its `<key>` is empty (the stage is off, its defaults unused).
    """
    if config is None:
        return
    target = schema.get("x-refers-to")
    if target is not None:
        names = config if isinstance(config, list) else [config]
        yield path, target, [str(n) for n in names]
        return
    if isinstance(config, Mapping):
        gate = schema.get("x-enabled-by")
        if gate is not None and not config.get(gate):
            return
        key_target = schema.get("propertyNames", {}).get("x-refers-to")
        if key_target is not None:
            for key in config:
                yield f"{path}.{key}" if path else str(key), key_target, [str(key)]
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, value in config.items():
            sub = props.get(key, extra if isinstance(extra, Mapping) else None)
            if sub is not None:
                where = f"{path}.{key}" if path else str(key)
                yield from references(sub, value, where)
    elif isinstance(config, list) and isinstance(schema.get("items"), Mapping):
        for i, value in enumerate(config):
            yield from references(schema["items"], value, f"{path}.{i}")


def check_references(config: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    """Every name in an ``x-refers-to`` key is defined by its collection.

    Args:
        config: the validated config (defaults filled in, so defaults are checked).
        schema: its JSON Schema (workflow/schemas/config.schema.yaml).

    Raises:
        ConfigError: ``config key features.main_archs: 'nope' is not one of
            architectures ['conv1', ...]``.
    """
    for path, target, names in references(schema, config):
        defined = _collection(config, target)
        if defined is None:
            continue
        for name in names:
            if name not in defined:
                fail(path, f"'{name}' is not one of {target} {sorted(defined)}")


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
    from ntkadv.data.sources import FILE, SOURCES, source_info

    for name, spec in datasets.items():
        if spec["source"] != FILE and spec["source"] not in SOURCES:
            fail(
                f"datasets.{name}.source",
                f"unknown source '{spec['source']}' (public sources of the registry "
                f"ntkadv.data.sources: {', '.join(SOURCES)}; or '{FILE}' with a path)",
            )
        if spec["source"] == FILE and "path" not in spec:
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


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    """A local ``{$ref: '#/a/b'}`` resolved against the root schema (else `schema`)."""
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def fill_family_maps(
    config: dict[str, Any],
    schema: Mapping[str, Any],
    families: Sequence[str],
    _node: Mapping[str, Any] | None = None,
) -> None:
    """Add every missing family to each mapping marked ``x-per-family: true``.

    Such a mapping (features.n_eval, features.spread, attacks.budget) is typed once
    by its ``additionalProperties`` schema; a family it leaves out gets a copy of that
    schema's ``default`` (a validation pass afterwards fills the defaults inside it).
    In place; sections absent from `config` are skipped (validate first).

    Args:
        config: the config, already validated (sections present).
        schema: the root JSON Schema (for local ``$ref``).
        families: the family names (`ntkadv.kernels.families.FAMILIES`).
    """
    node = schema if _node is None else _node
    if node.get("x-per-family"):
        value = _resolve(node.get("additionalProperties", {}), schema)
        for name in families:
            if name not in config:
                config[name] = json.loads(json.dumps(value.get("default")))
        return
    for key, sub in node.get("properties", {}).items():
        if isinstance(config.get(key), dict):
            fill_family_maps(config[key], schema, families, sub)
