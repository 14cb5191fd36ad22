"""Evaluation-point shards of rule attack_ntk (config resources.max_job_min): at
smoke scale, a limit that forces three shards of one kernel gives attack_ntk_shard
x 3 + merge_attack_shards, whose outputs equal the unsharded job's (every array,
attribute and table, up to float rounding), and leaves every other job as it was."""

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
PAIR = ("mnist", "fc1")
OUTPUTS = ("adversarial.h5", "pointwise.h5", "accuracy.csv", "gradient_check.csv")
#: Attributes that record the job's environment, not its results, and the lineage
#: (the files the job read: the caches, or the merge's shard files).
PROVENANCE = set(h5io.provenance()) | {"device", "jax_x64", h5io.SOURCES_ATTR}


def validated(path: Path) -> dict:
    """The config as the workflow sees it (schema defaults and family maps)."""
    config = yaml.safe_load(path.read_text())
    validate(config, str(SCHEMA))
    fill_family_maps(config, yaml.safe_load(SCHEMA.read_text()), FAMILIES)
    validate(config, str(SCHEMA))
    return config


def limit_for(config: dict, shards: int) -> float:
    """A resources.max_job_min under which PAIR's attacks run in `shards` shards:
    the bare request of its largest shard."""
    ds, arch = PAIR
    spec = config["architectures"][arch]
    d = sizing.input_dim(config["datasets"][ds]["source"])
    m = sizing.work_sizes("attack_ntk", spec["family"], config, ds, d)["m"]
    return sizing.point_job_runtime_min(
        "attack_ntk", config, ds, spec, d, -(-m // shards), floor=False
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
        if key not in PROVENANCE:
            assert attrs_a.get(key) == attrs_b.get(key), key


@pytest.mark.slow
def test_three_attack_shards_equal_the_unsharded_job(tmp_path):
    ds, arch = PAIR
    cfg = write_config(tmp_path, SMOKE)
    base = tmp_path / f"results/attacks/{ds}/{arch}"
    targets = [str(base.relative_to(tmp_path) / name) for name in OUTPUTS]
    snakemake(tmp_path, cfg, *targets)
    whole = tmp_path / "unsharded"
    shutil.copytree(base, whole)
    for name in OUTPUTS:
        (base / name).unlink()

    config = validated(cfg)
    config["resources"] = {"max_job_min": limit_for(config, 3)}
    spec = config["architectures"][arch]
    ranges = sizing.point_shards("attack_ntk", config, ds, spec, 784)
    assert ranges == [(0, 4), (4, 8), (8, 12)]
    written = yaml.safe_load(cfg.read_text())
    cfg.write_text(yaml.safe_dump({**written, "resources": config["resources"]}))
    # the caches upstream are up to date (no params of theirs changed)
    assert planned_rules(tmp_path, cfg, targets) == {
        "attack_ntk_shard": 3,
        "merge_attack_shards": 1,
    }
    snakemake(tmp_path, cfg, *targets)
    assert sorted(p.name for p in (base / "shards").iterdir()) == [
        "0.h5", "1.h5", "2.h5",
    ]  # fmt: skip
    for name in ("adversarial.h5", "pointwise.h5"):
        assert_same_h5(base / name, whole / name)
    for name in ("accuracy.csv", "gradient_check.csv"):
        pd.testing.assert_frame_equal(
            pd.read_csv(base / name), pd.read_csv(whole / name), rtol=1e-9
        )
    sources = h5io.read_attrs(base / "pointwise.h5")[h5io.SOURCES_ATTR]
    assert sorted(sources) == [f"attacks/{ds}/{arch}/shards/{i}.h5" for i in range(3)]
    # the merged outputs are up to date: nothing upstream reran, nothing left
    proc = snakemake(tmp_path, cfg, *targets, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr
