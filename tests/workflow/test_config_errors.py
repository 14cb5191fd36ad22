"""Config mistakes through `snakemake -n`: each fails while the Snakefile is read,
with one line naming the key (or file and line), before any job; `--config` alone
overrides keys of config.yaml. The other cases are unit tests of ntkadv.configcheck
(tests/unit/test_config.py); these are the representative ones end to end."""

from __future__ import annotations

import pytest
from test_workflow import REPO, run

PASSWD = "/etc/passwd"


def _dry_run(tmp_path, *args):
    return run(
        [
            "snakemake",
            "--snakefile",
            REPO / "Snakefile",
            "--directory",
            tmp_path,
            "--cores",
            "1",
            "-n",
            *args,
        ],
        check=False,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("config_text", "config_args", "message"),
    [
        (
            "extends: config.yaml\nseed: 1\ntransfer: {lr: 0.02}\nseed: 2\n",
            [],
            "config file {cfg}, line 4: duplicate key seed (first given on line 2;",
        ),
        (
            "extends: config.yaml\ntransfer: {lr: .nan}\n",
            [],
            "config key transfer.lr: nan is not a finite number",
        ),
        (f"extends: {PASSWD}\n", [], f"config key extends: config file {PASSWD} "),
        (
            None,
            ["seed=1", "features={main_archs: [fc2, nope]}"],
            "config key features.main_archs: 'nope' is not one of architectures [",
        ),
        (
            "extends: config.yaml\ndatasets:\n  mnist: {source: svhn}\n",
            [],
            "config key datasets.mnist.source: unknown source 'svhn' (public sources "
            "of the registry ntkadv.data.sources: mnist, cifar10;",
        ),
    ],
    ids=["duplicate-key", "nan", "extends-passwd", "config-main-archs", "source"],
)
def test_config_mistake_is_one_line_before_any_job(
    tmp_path, config_text, config_args, message
):
    args = []
    cfg = tmp_path / "bad.yaml"
    if config_text is not None:
        cfg.write_text(config_text)
        args += ["--configfile", cfg]
    if config_args:
        args += ["--config", *config_args]
    work = tmp_path / "work"
    proc = _dry_run(work, *args)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    errors = [
        line for line in out.splitlines() if line.startswith(("config key", "config f"))
    ]
    assert len(errors) == 1, out
    assert errors[0].startswith(message.format(cfg=cfg)), out
    assert "Traceback" not in out and "Exception" not in out, out
    assert not (work / "results").exists()
    jobs = [line for line in out.splitlines() if line.startswith(("rule", "local"))]
    assert jobs == [], out  # failed while reading the Snakefile: not even planned


def test_config_args_override_keys_of_the_default_config(tmp_path):
    """`--config seed=1` used to replace config.yaml ('datasets' is a required
    property); nested values are typed (a string '0.02' would fail the schema)."""
    proc = _dry_run(
        tmp_path,
        "--quiet",
        "rules",
        "--config",
        "seed=1",
        "transfer={lr: 0.02, seeds: [0]}",
        "--",
        "results/figures/features_ru_main.png",
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "plot_feature_ru" in out and "score_features" in out
    assert not (tmp_path / "results").exists()
