"""Tests of ntkadv.features.checks: evaluation sizes and indices beyond a feature
dataset's test subset fail before any job, naming the config key."""

from __future__ import annotations

import copy

import pytest
import yaml

from ntkadv.config import ConfigError
from ntkadv.features import checks


@pytest.fixture(scope="module")
def config(repo):
    """tests/config/smoke.yaml with the schema's defaults filled in."""
    from snakemake.utils import validate

    cfg = yaml.safe_load((repo / "tests/config/smoke.yaml").read_text())
    validate(cfg, str(repo / "workflow/schemas/config.schema.yaml"))
    return cfg


def test_the_smoke_config_passes(config):
    checks.check(config)


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("n_eval.conv", 9, "features.n_eval.conv"),  # cifar2 has 8 test points
        ("n_eval.fc", 13, "features.n_eval.fc"),
        ("image_test_index", 8, "features.image_test_index"),
        ("topr.n_val", 8, "features.topr.n_val"),
        ("bands.tail", [20, 10], "features.bands.tail"),
        ("image_arch", "fc9", "features.image_arch"),
    ],
)
def test_bad_feature_settings_name_the_key(config, key, value, named):
    bad = copy.deepcopy(config)
    node = bad["features"]
    *parents, leaf = key.split(".")
    for part in parents:
        node = node[part]
    node[leaf] = value
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        checks.check(bad)
