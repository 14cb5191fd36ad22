"""Evaluation-point shards (config resources.max_job_min) of rules attack_ntk and
score_features: at smoke scale, a limit that forces k shards of one kernel gives k
shard jobs + one merge, whose outputs equal the unsharded job's (every array,
attribute and table, up to float rounding), with nothing upstream rerun. The unsharded
job is the shared smoke run's (tests/workflow/conftest.py), sharded on a copy."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml
from snakemake.utils import validate
from test_workflow import REPO, snakemake, write_config

from ntkadv import h5io, sizing
from ntkadv.configcheck import fill_family_maps
from ntkadv.kernels.families import FAMILIES

SMOKE = REPO / "tests/config/smoke.yaml"
SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
#: Attributes that record the job's environment, not its results; the lineage
#: (the files the job read: the caches, or the merge's shard files); timings.
VOLATILE = set(h5io.provenance()) | {
    "device",
    "jax_x64",
    h5io.SOURCES_ATTR,
    "projection_seconds",
    "seconds_per_feature",
}
#: rule -> (its outputs below results/<stage>/<dataset>/<arch>/, stage, shard rule,
#: merge rule).
RULES = {
    "attack_ntk": (
        ("adversarial.h5", "pointwise.h5", "accuracy.csv", "gradient_check.csv"),
        "attacks",
        "attack_ntk_shard",
        "merge_attack_shards",
    ),
    "score_features": (
        ("scores.h5", "scores.csv"),
        "features",
        "score_features_shard",
        "merge_feature_shards",
    ),
}


def validated(path: Path) -> dict:
    """The config as the workflow sees it (schema defaults and family maps)."""
    config = yaml.safe_load(path.read_text())
    validate(config, str(SCHEMA))
    fill_family_maps(config, yaml.safe_load(SCHEMA.read_text()), FAMILIES)
    validate(config, str(SCHEMA))
    return config


def limit_for(config: dict, rule: str, pair: tuple[str, str], shards: int) -> float:
    """A resources.max_job_min under which `pair`'s `rule` job runs in `shards`
    shards: the bare request of its largest shard."""
    ds, arch = pair
    spec = config["architectures"][arch]
    d = sizing.input_dim(config["datasets"][ds]["source"])
    m = sizing.work_sizes(rule, spec["family"], config, ds, d)["m"]
    return sizing.point_job_runtime_min(
        rule, config, ds, spec, d, -(-m // shards), floor=False
    )


def planned_rules(workdir: Path, cfg: Path, targets: list[str]) -> dict[str, int]:
    """rule -> jobs `snakemake -n` schedules to build `targets`."""
    out = snakemake(workdir, cfg, *targets, "-n", "--quiet", "rules").stdout
    counts = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
            counts[parts[0]] = int(parts[1])
    return counts


def read_all(path: Path) -> dict[str, np.ndarray]:
    """Every dataset of an HDF5 file, nested groups included."""
    names: list[str] = []
    with h5io.open_read(path) as f:
        f.visititems(
            lambda name, obj: (
                names.append(name) if isinstance(obj, h5py.Dataset) else None
            )
        )
    return h5io.read(path, names)


def assert_same_h5(got: Path, want: Path) -> None:
    a, b = read_all(got), read_all(want)
    assert a, got
    assert sorted(a) == sorted(b)
    for key in b:
        assert a[key].shape == b[key].shape, key
        assert a[key].dtype == b[key].dtype, key
        np.testing.assert_allclose(a[key], b[key], rtol=1e-9, atol=1e-12, err_msg=key)
    attrs_a, attrs_b = h5io.read_attrs(got), h5io.read_attrs(want)
    for key in set(attrs_a) | set(attrs_b):
        if key not in VOLATILE:
            assert attrs_a.get(key) == attrs_b.get(key), key


@pytest.mark.slow
@pytest.mark.parametrize(
    ("rule", "pair", "ranges"),
    [
        ("attack_ntk", ("mnist", "fc1"), [(0, 4), (4, 8), (8, 12)]),
        ("score_features", ("mnist", "fc1"), [(0, 6), (6, 12)]),
    ],
)
def test_shards_equal_the_unsharded_job(smoke_run, tmp_path, rule, pair, ranges):
    outputs, stage, shard_rule, merge_rule = RULES[rule]
    ds, arch = pair
    # the unsharded job and its caches: those of the shared smoke run, on a copy
    work = tmp_path / "copy"
    shutil.copytree(smoke_run[0], work, symlinks=True)
    cfg = work / smoke_run[1].name
    assert cfg.read_text() == write_config(tmp_path, SMOKE).read_text()
    base = work / f"results/{stage}/{ds}/{arch}"
    targets = [str(base.relative_to(work) / name) for name in outputs]
    proc = snakemake(work, cfg, *targets, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr
    whole = tmp_path / "unsharded"
    shutil.copytree(base, whole)
    for name in outputs:
        (base / name).unlink()

    config = validated(cfg)
    config["resources"] = {"max_job_min": limit_for(config, rule, pair, len(ranges))}
    spec = config["architectures"][arch]
    assert sizing.point_shards(rule, config, ds, spec, 784) == ranges
    written = yaml.safe_load(cfg.read_text())
    cfg.write_text(yaml.safe_dump({**written, "resources": config["resources"]}))
    # the caches upstream are up to date (no params of theirs changed)
    assert planned_rules(work, cfg, targets) == {
        shard_rule: len(ranges),
        merge_rule: 1,
    }
    snakemake(work, cfg, *targets)
    shards = [f"{stage}/{ds}/{arch}/shards/{i}.h5" for i in range(len(ranges))]
    assert sorted(p.name for p in (base / "shards").iterdir()) == [
        Path(p).name for p in shards
    ]
    for name in outputs:
        if name.endswith(".h5"):
            assert_same_h5(base / name, whole / name)
            sources = h5io.read_attrs(base / name)[h5io.SOURCES_ATTR]
            assert set(shards) <= set(sources)
        else:
            pd.testing.assert_frame_equal(
                pd.read_csv(base / name), pd.read_csv(whole / name), rtol=1e-9
            )
    # the merged outputs are up to date: nothing left to run
    proc = snakemake(work, cfg, *targets, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr
