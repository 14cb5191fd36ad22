"""Dynamics stage (supp. App. E) under bad settings and damaged files, at smoke
scale: a diverging learning rate fails the training job naming dataset, regime,
seed, epoch and the config key, with no run file; a truncated checkpoint is
discarded with a warning and the job completes; disabling the stage schedules no
dynamics job. (Config mistakes: test_workflow.test_bad_config_fails_before_any_job.)"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml
from test_workflow import REPO, scheduled_rules, snakemake, write_config

from ntkadv.claims.core import COLUMNS

SMOKE = REPO / "tests/config/smoke.yaml"
RUN = Path("results/dynamics/mnist/standard/seed0/run.h5")
LOG = Path("results/logs/train_dynamics_network/mnist/standard/seed0.log")


def test_diverging_lr_fails_the_training_job_and_leaves_no_run(tmp_path):
    cfg = write_config(
        tmp_path, SMOKE, **{"dynamics.datasets.mnist.learning_rate": 1e6}
    )
    proc = snakemake(tmp_path, cfg, str(RUN), check=False)
    assert proc.returncode != 0
    text = (tmp_path / LOG).read_text()
    assert "DivergenceError: training diverged (dataset mnist, regime standard" in text
    assert "seed 0, epoch 1" in text
    assert "lower dynamics.datasets.mnist.learning_rate" in text
    assert not (tmp_path / RUN).exists()
    assert "rule train_dynamics_network: DivergenceError" in proc.stderr + proc.stdout


def test_truncated_checkpoint_is_discarded_and_the_job_completes(tmp_path):
    cfg = write_config(tmp_path, SMOKE)
    ckpt = tmp_path / RUN.parent / "ckpt"
    snakemake(tmp_path, cfg, "results/data/mnist.h5")
    ckpt.mkdir(parents=True)
    (ckpt / "state.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)  # truncated
    snakemake(tmp_path, cfg, str(RUN))
    text = (tmp_path / LOG).read_text()
    assert "is unreadable or incomplete" in text and "restarts from scratch" in text
    assert (tmp_path / RUN).exists() and not ckpt.exists()


def test_disabled_dynamics_schedules_no_training(tmp_path):
    cfg = write_config(
        tmp_path,
        SMOKE,
        **{"dynamics.datasets": {}, "dynamics.linearize.datasets": []},
    )
    rules = scheduled_rules(tmp_path, yaml.safe_load(cfg.read_text()))
    assert rules and not {r for r in rules if "dynamics" in r or "linearized" in r} - {
        "summarize_dynamics_claims"
    }, rules
    if "summarize_dynamics_claims" in rules:
        snakemake(tmp_path, cfg, "results/tables/claims/dynamics.csv")
        table = pd.read_csv(tmp_path / "results/tables/claims/dynamics.csv")
        assert list(table.columns) == COLUMNS and table.empty
