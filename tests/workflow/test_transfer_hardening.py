"""Transfer stage (supp. App. C) under bad settings: a diverging learning rate fails
its job with the run and the config key named and leaves no run file; config
mistakes fail before any job; a disabled stage schedules no transfer computation."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from test_workflow import REPO, scheduled_rules, snakemake, write_config

from ntkadv.claims.core import COLUMNS

SMOKE = REPO / "tests/config/smoke.yaml"
TRANSFER_COMPUTE = {
    "compute_transfer_reference",
    "train_twolayer_net",
    "aggregate_transfer",
    "plot_transfer_curves",
    "plot_transfer_gradients",
}


def test_diverging_lr_override_fails_the_job_and_leaves_no_run_file(tmp_path):
    """lr 1000 on MNIST: lr * lambda_max / n is ~1e4 >> 2 (GD on the mean loss
    diverges); the reference job fails before any net trains."""
    cfg = write_config(
        tmp_path, SMOKE, **{"transfer.lr_overrides": {"cifar2": 0.0025, "mnist": 1e3}}
    )
    run = Path("results/transfer/mnist/twolayer/width50_seed0.h5")
    proc = snakemake(tmp_path, cfg, str(run), check=False)
    assert proc.returncode != 0
    log = tmp_path / "results/logs/compute_transfer_reference/mnist/twolayer.log"
    text = log.read_text()
    assert "DivergenceError: transfer: GD is unstable for dataset mnist" in text
    assert "transfer.lr_overrides.mnist" in text and ">= 2" in text
    assert not (tmp_path / run).exists()
    assert not (tmp_path / run.parent / "ntk_reference.h5").exists()
    assert not list((tmp_path / "results").rglob("transfer_curves_*.png"))


@pytest.mark.parametrize(
    ("override", "named"),
    [
        (
            {"transfer.lr_overrides": {"cifar2": 0.0025, "mnsit": 0.01}},
            "transfer.lr_overrides.mnsit",
        ),
        ({"transfer.n_train": 1000}, "transfer.n_train: 1000 exceeds"),
        ({"transfer.image_index": 8}, "transfer.image_index: 8 is not a test point"),
        ({"transfer.image_dataset": "cifar10"}, "transfer.image_dataset"),
    ],
)
def test_transfer_config_mistake_fails_before_any_job(tmp_path, override, named):
    cfg = write_config(tmp_path, SMOKE, **override)
    proc = snakemake(tmp_path, cfg, "-n", check=False)
    assert proc.returncode != 0
    assert named in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("base", ["config/notebook.yaml", "tests/config/smoke.yaml"])
def test_disabled_stage_schedules_no_transfer_computation(tmp_path, base):
    """transfer.datasets: [] (as in config/notebook.yaml): no reference, net, table
    or figure job; the stage's claims table (if the claims rule asks for it) is the
    header alone."""
    cfg = write_config(tmp_path, REPO / base, **{"transfer.datasets": []})
    import yaml

    rules = scheduled_rules(tmp_path, yaml.safe_load(cfg.read_text()))
    assert rules and not set(rules) & TRANSFER_COMPUTE, rules
    snakemake(tmp_path, cfg, "results/tables/claims/transfer.csv")
    table = pd.read_csv(tmp_path / "results/tables/claims/transfer.csv")
    assert list(table.columns) == COLUMNS and table.empty
    assert not (tmp_path / "results/transfer").exists()
