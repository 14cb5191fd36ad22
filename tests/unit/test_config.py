"""Tests of ntkadv.config: canonical params, typed settings, cross-section checks."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import yaml

from ntkadv.config import ConfigError, canonical, pick, settings_from
from ntkadv.configcheck import check_config

REPO = Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class Inner:
    lr: float
    steps: int = 1


@dataclasses.dataclass(frozen=True)
class Outer:
    name: str
    widths: tuple[int, ...]
    inner: Inner
    optional: Inner | None = None
    tags: list[str] = dataclasses.field(default_factory=list)


def test_canonical_sorts_keys_recursively():
    a = {"b": {"y": 1, "x": [2, (3, 4)]}, "a": np.float64(0.5), "c": np.int64(3)}
    b = {"c": 3, "a": 0.5, "b": {"x": [2, [3, 4]], "y": 1}}
    assert repr(canonical(a)) == repr(canonical(b))
    assert list(canonical(a)) == ["a", "b", "c"]
    assert list(canonical(a)["b"]) == ["x", "y"]
    assert type(canonical(a)["a"]) is float and type(canonical(a)["c"]) is int
    assert canonical(a)["b"]["x"] == [2, [3, 4]]


def test_pick_names_the_missing_key():
    params = {"lr": 0.1, "steps": 3, "other": None}
    assert pick(params, "steps", "lr") == {"steps": 3, "lr": 0.1}
    with pytest.raises(KeyError, match="'epochs'"):
        pick(params, "lr", "epochs")


def test_settings_from_builds_nested_frozen_dataclasses():
    s = settings_from(
        Outer,
        {"name": "x", "widths": [1, 2], "inner": {"lr": 0.5}, "optional": None},
    )
    assert s == Outer("x", (1, 2), Inner(0.5), None)
    assert isinstance(s.widths, tuple) and isinstance(s.inner, Inner)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.name = "y"  # type: ignore[misc]
    full = settings_from(
        Outer,
        {
            "name": "x",
            "widths": (3,),
            "inner": {"lr": 0.5, "steps": 4},
            "optional": {"lr": 1.0},
            "tags": ["a"],
        },
    )
    assert full.optional == Inner(1.0) and full.inner.steps == 4
    assert full.tags == ["a"]  # lists stay lists for non-tuple fields


@pytest.mark.parametrize(
    ("params", "where", "unknown", "missing"),
    [
        (
            {"name": "x", "widths": [], "inner": {"lr": 1.0}, "x": 1},
            "Outer at rule",
            ["x"],
            [],
        ),
        ({"name": "x", "inner": {"lr": 1.0}}, "Outer at rule", [], ["widths"]),
        (
            {"name": "x", "widths": [], "inner": {"steps": 2, "typo": 0}},
            "Inner at rule.inner",
            ["typo"],
            ["lr"],
        ),
    ],
)
def test_settings_from_names_unknown_and_missing_keys(params, where, unknown, missing):
    with pytest.raises(TypeError) as err:
        settings_from(Outer, params, "rule")
    assert str(err.value) == (
        f"{where}: unknown keys {unknown}, missing keys {missing}"
    )


@pytest.fixture(scope="module")
def config(repo):
    """/work/main/config.yaml with the schema's defaults filled in."""
    from snakemake.utils import validate

    with open(repo / "config.yaml") as f:
        cfg = yaml.safe_load(f)
    validate(cfg, str(repo / "workflow" / "schemas" / "config.schema.yaml"))
    return cfg


def test_check_config_accepts_the_repository_config(config):
    check_config(config)


def test_check_config_names_an_unknown_kernel_dataset(config):
    bad = copy.deepcopy(config)
    bad["kernels"]["datasets"] = [*bad["kernels"]["datasets"], "svhn"]
    with pytest.raises(ConfigError, match=r"kernels\.datasets.*'svhn'"):
        check_config(bad)
    assert issubclass(ConfigError, ValueError)


# ---------------------------------------------------------------- phase-B config tools


def test_extends_merges_recursively_and_detects_cycles(tmp_path):
    from ntkadv.configcheck import resolve_extends

    (tmp_path / "base.yaml").write_text("a: {x: 1, y: 2}\nb: 3\n")
    (tmp_path / "loop.yaml").write_text("extends: loop.yaml\n")
    merged = resolve_extends({"extends": "base.yaml", "a": {"y": 5}}, str(tmp_path))
    assert merged == {"a": {"x": 1, "y": 5}, "b": 3}
    emptied = resolve_extends({"extends": "base.yaml", "a": {}}, str(tmp_path))
    assert emptied == {"a": {}, "b": 3}  # an empty mapping replaces (disables)
    with pytest.raises(ConfigError, match="cycle"):
        resolve_extends({"extends": "loop.yaml"}, str(tmp_path))
    with pytest.raises(ConfigError, match="no such file"):
        resolve_extends({"extends": "nope.yaml"}, str(tmp_path))


def test_yaml_floats_without_a_dot_are_numbers():
    from ntkadv.configcheck import coerce_floats

    out = coerce_floats({"lr": "1e-2", "l": ["2E3", "fc1", "1e"], "s": "float32"})
    assert out == {"lr": 0.01, "l": [2000.0, "fc1", "1e"], "s": "float32"}


def test_schema_errors_are_one_line_per_key(repo):
    from ntkadv.configcheck import schema_errors

    config = yaml.safe_load((repo / "config.yaml").read_text())
    config["kernels"]["blok_size"] = 3
    config["datasets"]["mnist"]["eps"] = 5.0
    errors = schema_errors(config, str(repo / "workflow/schemas/config.schema.yaml"))
    assert len(errors) == 2
    assert any(e.startswith("config key kernels:") and "blok_size" in e for e in errors)
    assert any(e.startswith("config key datasets.mnist.eps:") for e in errors)
    assert all(len(e) < 300 for e in errors)
    assert (
        schema_errors(
            yaml.safe_load((repo / "config.yaml").read_text()),
            str(repo / "workflow/schemas/config.schema.yaml"),
        )
        == []
    )


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("datasets.cifar2.n_train", 20000, "datasets.cifar2.n_train"),
        ("datasets.mnist.n_test", 10001, "datasets.mnist.n_test"),
        ("predictor.tau_log10_min", 9, "predictor.tau_log10_min"),
        ("features.image_arch", "nope", "features.image_arch"),
        ("dynamics.datasets.mnist.n_train", 1001, "dynamics.datasets.mnist.n_train"),
        ("dynamics.datasets.mnist.batch_size", 5000, "mnist.batch_size"),
        ("dynamics.datasets.cifar10.kernel_batch", 1001, "cifar10.kernel_batch"),
        ("dynamics.datasets.cifar10.ntk_block", 7, "cifar10.ntk_block"),
        ("dynamics.datasets.cifar10.n_eval_test", 501, "cifar10.n_eval_test"),
        ("dynamics.linearize.seeds", [5], "dynamics.linearize.seeds"),
    ],
)
def test_cross_section_checks_name_the_key(config, key, value, named):
    config = copy.deepcopy(config)
    node = config
    *parents, leaf = key.split(".")
    for part in parents:
        node = node[part]
    node[leaf] = value
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        check_config(config)


def test_linearised_seeds_are_checked_against_their_datasets_own_seeds(config):
    """dynamics.datasets.<d>.seeds overrides dynamics.seeds for that dataset: a
    linearised seed must have a PGD run among the dataset's own seeds."""
    from ntkadv.dynamics.checks import dataset_seeds

    config = copy.deepcopy(config)
    dyn = config["dynamics"]
    dyn["datasets"]["cifar10"]["seeds"] = [3, 4]
    assert dataset_seeds(dyn, "cifar10") == [3, 4]
    dyn["datasets"]["mnist"]["seeds"] = None
    assert dataset_seeds(dyn, "mnist") == dyn["seeds"]
    dyn["linearize"]["seeds"] = [0]  # in dynamics.seeds, not in cifar10's own
    with pytest.raises(ConfigError, match=r"not in the cifar10 dynamics seeds"):
        check_config(config)
    dyn["linearize"]["seeds"] = [4]
    check_config(config)


# ------------------------------------------- parse-time loading (ntkadv.configcheck)

SCHEMA_PATH = "workflow/schemas/config.schema.yaml"


def _bomb(levels: int) -> str:
    """A YAML "billion laughs": 10**levels leaves from a few hundred bytes."""
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    prev = "a"
    for name in "bcdefghij"[: levels - 1]:
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
        prev = name
    return "\n".join(lines) + "\n"


def test_strict_yaml_refuses_aliases_before_expanding_them():
    import time

    from ntkadv.configcheck import load_yaml

    text = _bomb(6)  # 10**6 leaves once expanded
    assert len(text) < 1024
    start = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        load_yaml(text, "config file bomb.yaml")
    assert time.perf_counter() - start < 0.5
    assert str(err.value).startswith("config file bomb.yaml, line 2: YAML alias *a")
    with pytest.raises(ConfigError, match="line 4: YAML alias"):
        load_yaml("base: &b {x: 1}\nother: 2\nnew:\n  <<: *b\n", "merge")
    # an anchor alone expands nothing and is accepted
    assert load_yaml("a: &x 1\nb: 2\n", "f") == {"a": 1, "b": 2}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("seed: 0\nseed: 1\n", "line 2: duplicate key seed (first given on line 1;"),
        (
            "datasets:\n  mnist: {n_train: 1, eps: 0.3, eps: 0.1}\n",
            "line 2: duplicate key datasets.mnist.eps (first given on line 2;",
        ),
        (
            "a:\n  - {x: 1}\n  - x: 1\n    y: 2\n    x: 3\n",
            "line 5: duplicate key a.1.x (first given on line 3;",
        ),
    ],
)
def test_strict_yaml_names_a_duplicate_key_and_its_lines(text, message):
    from ntkadv.configcheck import load_yaml

    with pytest.raises(ConfigError) as err:
        load_yaml(text, "config file c.yaml")
    assert str(err.value).startswith(f"config file c.yaml, {message}")
    assert "\n" not in str(err.value)


def test_strict_yaml_names_syntax_errors_and_deep_nesting():
    from ntkadv.configcheck import MAX_DEPTH, StrictLoader, load_yaml

    with pytest.raises(ConfigError, match=r"^config file c\.yaml, line 2: not valid"):
        load_yaml("a: [1, 2\nb: 3\n", "config file c.yaml")
    deep = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    with pytest.raises(ConfigError, match="nested deeper than"):
        load_yaml(deep, "c.yaml")
    with pytest.raises(ConfigError, match="line 2: a key must be a plain name"):
        load_yaml("a: 1\n? [b, c]\n: 2\n", "config file c.yaml")
    with pytest.raises(ConfigError, match=r"line 1: not valid YAML \(could not"):
        load_yaml("a: !!python/tuple [1, 2]\n", "config file c.yaml")
    assert yaml.load("a: 1\n", Loader=StrictLoader) == {"a": 1}
    with pytest.raises(ConfigError, match="duplicate key a"):
        yaml.load("a: 1\na: 1\n", Loader=StrictLoader)
    nested = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    assert load_yaml(nested, "c.yaml") is not None


def test_extends_errors_name_the_file(tmp_path):
    from ntkadv.configcheck import resolve_extends

    (tmp_path / "text.yaml").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    (tmp_path / "bad.yaml").write_text("a: [1\n")
    (tmp_path / "dup.yaml").write_text("a: 1\na: 2\n")
    (tmp_path / "one.yaml").write_text("extends: two.yaml\n")
    (tmp_path / "two.yaml").write_text("extends: one.yaml\n")
    cases = {
        "text.yaml": f"config file {tmp_path}/text.yaml is not a mapping",
        "list.yaml": f"config file {tmp_path}/list.yaml is not a mapping",
        "bad.yaml": f"config file {tmp_path}/bad.yaml, line 2: not valid YAML",
        "dup.yaml": f"config file {tmp_path}/dup.yaml, line 2: duplicate key a",
        "nope.yaml": f"no such file {tmp_path}/nope.yaml",
        "one.yaml": f"cycle {tmp_path}/one.yaml -> {tmp_path}/two.yaml -> "
        f"{tmp_path}/one.yaml",
        "/etc/passwd": None,
    }
    for name, message in cases.items():
        with pytest.raises(ConfigError) as err:
            resolve_extends({"extends": name, "seed": 1}, str(tmp_path))
        text = str(err.value)
        assert text.startswith("config key extends: "), text
        assert "\n" not in text
        if message is None:  # absolute path: whatever it holds, it is named
            assert "/etc/passwd" in text
        else:
            assert message in text
    for value in (None, 3, ["a.yaml"]):
        with pytest.raises(ConfigError, match="is not a file name"):
            resolve_extends({"extends": value}, str(tmp_path))


def test_json_config_files_are_read_as_snakemake_reads_them(tmp_path):
    """JSON first (a tab-indented JSON file is not YAML); duplicate keys refused."""
    import json

    from ntkadv.configcheck import check_finite, load_config_file

    good = {"seed": 1, "transfer": {"lr": 0.02, "seeds": [0, 1]}}
    (tmp_path / "c.json").write_text(json.dumps(good, indent="\t"))
    assert load_config_file(str(tmp_path / "c.json")) == good
    (tmp_path / "d.json").write_text('{"seed": 1, "t": {"a": 1, "a": 2}}')
    with pytest.raises(ConfigError, match=r"d\.json: duplicate key a \(JSON"):
        load_config_file(str(tmp_path / "d.json"))
    (tmp_path / "n.json").write_text('{"transfer": {"lr": NaN}}')
    with pytest.raises(ConfigError, match=r"^config key transfer\.lr: nan is not"):
        check_finite(load_config_file(str(tmp_path / "n.json")))


def test_config_args_are_typed_yaml_values():
    from ntkadv.configcheck import parse_config_args

    out = parse_config_args(
        ["seed=1", "transfer={lr: 0.02, seeds: [0, 1]}", "x=", "y=fc1", "seed=2"]
    )
    assert out == {
        "seed": 2,
        "transfer": {"lr": 0.02, "seeds": [0, 1]},
        "x": None,
        "y": "fc1",
    }
    assert isinstance(out["transfer"]["lr"], float)
    with pytest.raises(ConfigError, match=r"^config key t \(--config\), line 1: not"):
        parse_config_args(["t={lr: [0.1}"])
    with pytest.raises(ConfigError, match=r"\(--config\), line 1: duplicate key t\.a "):
        parse_config_args(["t={a: 1, a: 2}"])


def test_load_config_merges_files_then_config_args(tmp_path):
    from ntkadv.configcheck import load_config

    (tmp_path / "base.yaml").write_text("a: {x: 1, y: 2}\nb: [1, 2]\nc: 1e-2\n")
    (tmp_path / "child.yaml").write_text("extends: base.yaml\na: {y: 3}\n")
    (tmp_path / "second.yaml").write_text("b: [3]\n")
    files = [str(tmp_path / "child.yaml"), str(tmp_path / "second.yaml")]
    out = load_config(files, ["a={x: 5}", "d=1e-3"], str(tmp_path))
    assert out == {"a": {"x": 5, "y": 3}, "b": [3], "c": 0.01, "d": 0.001}
    # --config alone overrides the default file; extends may come from --config
    out = load_config([str(tmp_path / "second.yaml")], ["seed=1"], str(tmp_path))
    assert out == {"b": [3], "seed": 1}
    out = load_config([], ["extends=base.yaml", "b=[9]"], str(tmp_path))
    assert out == {"a": {"x": 1, "y": 2}, "b": [9], "c": 0.01}


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ({"eps": float("nan")}, "eps"),
        ({"transfer": {"lr": float("nan")}}, "transfer.lr"),
        ({"a": {"b": [1.0, float("-inf")]}}, "a.b.1"),
        ({"x": "1e999"}, "x"),  # a YAML-1.1 string float that overflows
    ],
)
def test_check_finite_names_the_key(value, key):
    from ntkadv.configcheck import check_finite

    with pytest.raises(ConfigError) as err:
        check_finite(coerce_floats(value))
    assert str(err.value).startswith(f"config key {key}: ")
    assert "is not a finite number" in str(err.value)


def test_check_finite_accepts_finite_numbers_and_other_values():
    from ntkadv.configcheck import check_finite

    check_finite({"a": [0.0, 1e300, -2], "b": {"c": None, "d": "nan", "e": True}})


def coerce_floats(value):
    from ntkadv.configcheck import coerce_floats as coerce

    return coerce(value)


def _schema(repo):
    return yaml.safe_load((repo / SCHEMA_PATH).read_text())


def _marked_keys(schema, path=""):
    """(dotted key, 'value' | 'keys') of every x-refers-to mark of the schema."""
    for key, sub in schema.get("properties", {}).items():
        where = f"{path}.{key}" if path else key
        if "x-refers-to" in sub:
            yield where, "value"
        if "x-refers-to" in sub.get("propertyNames", {}):
            yield where, "keys"
        yield from _marked_keys(sub, where)


def test_every_name_holding_key_of_the_schema_is_marked(repo):
    """A key named like an architecture or dataset reference carries x-refers-to
    (or marks its keys), except the two mappings that define the names."""
    marked = {key for key, _ in _marked_keys(_schema(repo))}
    unmarked = []

    def walk(schema, path):
        for key, sub in schema.get("properties", {}).items():
            where = f"{path}.{key}" if path else key
            words = key.split("_")  # not data.search_dirs
            named = any(w.startswith(("arch", "dataset")) for w in words)
            defines = where in ("datasets", "architectures")
            if named and not defines and where not in marked:
                unmarked.append(where)
            walk(sub, where)

    walk(_schema(repo), "")
    assert unmarked == []
    assert len(marked) >= 16


def _set(config, dotted, how):
    node = config
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node[part]
    if how == "keys":
        node[leaf] = {**node[leaf], "nope": next(iter(node[leaf].values()), 1)}
    elif isinstance(node[leaf], list):
        node[leaf] = [*node[leaf], "nope"]
    else:
        node[leaf] = "nope"


def _marked_params(repo):
    return sorted(_marked_keys(yaml.safe_load((repo / SCHEMA_PATH).read_text())))


@pytest.mark.parametrize(("key", "how"), _marked_params(REPO))
def test_every_reference_to_an_undefined_name_is_named(config, repo, key, how):
    """For each marked key of the schema, an undefined name fails with that key."""
    from ntkadv.configcheck import check_references

    schema = _schema(repo)
    check_references(config, schema)
    bad = copy.deepcopy(config)
    if key == "attacks.architectures":
        bad["attacks"]["architectures"] = ["fc1"]
    _set(bad, key, how)
    with pytest.raises(ConfigError) as err:
        check_references(bad, schema)
    named = f"{key}.nope" if how == "keys" else key
    assert str(err.value).startswith(f"config key {named}: 'nope' is not one of ")
    assert "\n" not in str(err.value)


def test_main_archs_of_an_unknown_arch_is_an_error_not_a_drop(config, repo):
    from ntkadv.configcheck import check_references

    bad = copy.deepcopy(config)
    bad["features"]["main_archs"] = ["fc2", "nope"]
    with pytest.raises(ConfigError) as err:
        check_references(bad, _schema(repo))
    assert str(err.value) == (
        "config key features.main_archs: 'nope' is not one of architectures "
        f"{sorted(config['architectures'])}"
    )


def test_references_of_a_disabled_stage_are_not_checked(config, repo):
    """transfer.arch and features.* defaults need not exist while the stage is off
    (config/notebook.yaml: transfer.datasets [] and no twolayer arch)."""
    from ntkadv.configcheck import check_references

    off = copy.deepcopy(config)
    off["transfer"] |= {"datasets": [], "arch": "nope", "image_dataset": "nope"}
    off["features"] |= {"datasets": [], "main_archs": ["nope"], "image_arch": "nope"}
    check_references(off, _schema(repo))


def test_features_notebook_null_validates_and_defaults_fill_both_keys(repo):
    from snakemake.utils import validate

    from ntkadv.configcheck import check_references

    cfg = yaml.safe_load((repo / "config.yaml").read_text())
    cfg["features"]["notebook"] = None
    validate(cfg, str(repo / SCHEMA_PATH))
    assert cfg["features"]["notebook"] is None
    check_references(cfg, _schema(repo))
    del cfg["features"]["notebook"]
    validate(cfg, str(repo / SCHEMA_PATH))
    assert cfg["features"]["notebook"] == {"dataset": "cifar2", "arch": "fc1"}


def test_schema_refuses_an_empty_main_archs_and_repeated_names(repo):
    from ntkadv.configcheck import schema_errors

    cfg = yaml.safe_load((repo / "config.yaml").read_text())
    cfg["features"]["main_archs"] = []
    cfg["kernels"]["datasets"] = ["mnist", "mnist"]
    errors = schema_errors(cfg, str(repo / SCHEMA_PATH))
    assert [e.split(":")[0] for e in errors] == [
        "config key features.main_archs",
        "config key kernels.datasets",
    ]


@pytest.mark.parametrize(
    "path",
    [
        "config.yaml",
        "config/notebook.yaml",
        "config/null.yaml",
        "config/paper.yaml",
        "tests/config/smoke.yaml",
        "tests/config/smoke_null.yaml",
    ],
)
def test_shipped_configs_load_strictly_and_pass_every_check(repo, path):
    from snakemake.utils import validate

    from ntkadv.configcheck import check_finite, check_references, load_config

    cfg = load_config([str(repo / path)], None, str(repo))
    check_finite(cfg)
    validate(cfg, str(repo / SCHEMA_PATH))
    check_references(cfg, _schema(repo))
    check_config(cfg)


def test_jobs_do_not_import_the_parse_time_checks():
    """Job scripts import ntkadv.config (settings) and stage modules; none of them
    pulls in ntkadv.configcheck (issue 21: figure jobs independent of it)."""
    import subprocess
    import sys

    code = (
        "import sys, ntkadv.config, ntkadv.transfer.checks, ntkadv.features.checks;"
        "print('ntkadv.configcheck' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
