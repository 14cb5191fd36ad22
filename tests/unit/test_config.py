"""Tests of ntkadv.config: canonical params, typed settings, cross-section checks."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import yaml

from ntkadv.config import ConfigError, canonical, check_config, pick, settings_from


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
    from ntkadv.config import resolve_extends

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
    from ntkadv.config import coerce_floats

    out = coerce_floats({"lr": "1e-2", "l": ["2E3", "fc1", "1e"], "s": "float32"})
    assert out == {"lr": 0.01, "l": [2000.0, "fc1", "1e"], "s": "float32"}


def test_schema_errors_are_one_line_per_key(repo):
    from ntkadv.config import schema_errors

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
