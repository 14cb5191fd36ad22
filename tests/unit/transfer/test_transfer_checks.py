"""Tests of ntkadv.transfer.checks: config errors name the key before any job; the
GD stability, finiteness and descent checks name the run, epoch and lr key."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import yaml

from ntkadv.config import ConfigError
from ntkadv.configcheck import check_config
from ntkadv.transfer import checks


@pytest.fixture(scope="module")
def config(repo):
    """config.yaml with the schema's defaults filled in."""
    from snakemake.utils import validate

    with open(repo / "config.yaml") as f:
        cfg = yaml.safe_load(f)
    validate(cfg, str(repo / "workflow" / "schemas" / "config.schema.yaml"))
    return cfg


def _with(config, **changes):
    cfg = copy.deepcopy(config)
    cfg["transfer"].update(changes)
    return cfg


def test_the_repository_config_passes(config):
    checks.check(config)
    check_config(config)


@pytest.mark.parametrize(
    ("changes", "pattern"),
    [
        ({"lr_overrides": {"cifar": 0.001}}, r"transfer\.lr_overrides\.cifar: 'cifar'"),
        ({"lr_overrides": {"cifar10": 0.001}}, r"transfer\.lr_overrides\.cifar10"),
        ({"n_train": 5000}, r"transfer\.n_train: 5000 exceeds datasets\.\w+\.n_train"),
        ({"image_dataset": "cifar10"}, r"transfer\.image_dataset: 'cifar10'"),
        ({"align_epoch": 5000}, r"transfer\.align_epoch: 5000 > transfer\.epochs"),
        ({"image_epochs": [10, 5000]}, r"transfer\.image_epochs: \[5000\]"),
        ({"arch": "fc1"}, r"transfer\.arch: must be of family 'twolayer'"),
    ],
)
def test_bad_transfer_settings_name_the_key(config, changes, pattern):
    with pytest.raises(ConfigError, match=pattern):
        checks.check(_with(config, **changes))


@pytest.mark.parametrize(
    "changes",
    [
        {"image_dataset": None},
        {"n_train": 1000},
        {"lr_overrides": {}},
    ],
)
def test_edge_settings_that_are_fine(config, changes):
    checks.check(_with(config, **changes))


def test_image_index_must_be_a_test_point(config):
    n = config["datasets"][config["transfer"]["image_dataset"]]["n_test"]
    checks.check(_with(config, image_index=n - 1))
    with pytest.raises(ConfigError, match=rf"transfer\.image_index: {n} is not a test"):
        checks.check(_with(config, image_index=n))


def test_a_disabled_stage_checks_nothing_else(config):
    checks.check(_with(config, datasets=[], lr_overrides={"typo": 1.0}, arch="fc1"))


# ---------------------------------------------------------------- divergence


def test_stability_passes_below_two_and_names_everything_above():
    checks.check_stability(1.99, 10.0, 100, 19.9, "mnist", "dataset mnist")
    at = "dataset mnist, width 1000, seed 0, epoch 0"
    with pytest.raises(checks.DivergenceError) as err:
        checks.check_stability(
            12924.359, 1292435.9, 200, 1000.0, "mnist", at
        )  # the brief's lr_overrides.mnist: 1000
    msg = str(err.value)
    assert at in msg and "transfer.lr_overrides.mnist" in msg
    assert "12924.4" in msg and ">= 2" in msg
    limit = 2 * 200 / 1292435.9
    assert f"below {limit:.4g}" in msg


def test_stability_rejects_nan():
    with pytest.raises(checks.DivergenceError):
        checks.check_stability(math.nan, 1.0, 10, 0.1, "cifar2", "dataset cifar2")


def test_finite_and_descent_checks():
    checks.check_finite({"loss": 0.5, "W": np.ones(3)}, 0.01, "mnist", "here")
    with pytest.raises(checks.DivergenceError, match=r"here: W, f not finite"):
        bad = {"loss": 0.5, "W": np.array([1.0, np.inf]), "f": np.nan}
        checks.check_finite(bad, 0.01, "mnist", "here")
    checks.check_descent(0.99, 0.5, 0.01, "mnist", "here")
    with pytest.raises(checks.DivergenceError, match=r"training loss 1\.5 > 2 x"):
        checks.check_descent(1.5, 0.5, 0.01, "mnist", "here, epoch 3")
    assert checks.where("mnist", 1000, 2) == "dataset mnist, width 1000, seed 2"
