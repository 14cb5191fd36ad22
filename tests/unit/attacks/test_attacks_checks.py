"""Config of the attack stage: schema defaults, attacks.notebook: null, checks."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from ntkadv.config import ConfigError
from ntkadv.configcheck import check_config

REPO = Path(__file__).resolve().parents[3]
SCHEMA = str(REPO / "workflow" / "schemas" / "config.schema.yaml")


def _validated(overrides=None):
    from snakemake.utils import validate

    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    for key, value in (overrides or {}).items():
        cfg["attacks"][key] = value
    validate(cfg, SCHEMA)
    return cfg


def test_notebook_null_validates_and_passes_the_checks():
    """Used to crash in the schema's default filling (setdefault on None)."""
    cfg = _validated({"notebook": None})
    assert cfg["attacks"]["notebook"] is None
    check_config(cfg)


def test_notebook_default_and_required_keys():
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    del cfg["attacks"]["notebook"]
    from snakemake.utils import validate

    validate(cfg, SCHEMA)
    assert cfg["attacks"]["notebook"] == {"dataset": "cifar2", "arch": "fc1"}
    with pytest.raises(Exception, match="arch"):
        _validated({"notebook": {"dataset": "cifar2"}})


def test_defaults_of_the_nulls_and_the_row_blocks():
    cfg = _validated()
    assert cfg["attacks"]["null_permutations"] >= 2
    assert cfg["attacks"]["budget"]["fc"]["block_size"] == 500
    with pytest.raises(Exception, match="null_permutations|minimum"):
        _validated({"null_permutations": 1})


def test_checks_name_the_key():
    cfg = _validated()
    bad = copy.deepcopy(cfg)
    bad["attacks"]["notebook"] = {"dataset": "cifar2", "arch": "fc9"}
    with pytest.raises(ConfigError, match="attacks.notebook"):
        check_config(bad)
    bad = copy.deepcopy(cfg)
    bad["attacks"]["example_arch"] = "fc9"
    with pytest.raises(ConfigError, match="attacks.example_arch"):
        check_config(bad)
