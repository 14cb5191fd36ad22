"""Bring your own dataset by config alone: an .npz of a researcher's arrays (here a
small MNIST-derived set, floats in [0, 1], with class names) runs through the kernel
stages, attacks, features and their claims at smoke size; a broken file is named
before any job."""

from __future__ import annotations

import numpy as np
import pandas as pd
import yaml
from test_workflow import REPO, snakemake, write_config

from ntkadv import data, h5io

SMOKE = REPO / "tests/config/smoke.yaml"
CLASSES = [3, 7]


def own_npz(path, shared_data, n_train=200, n_test=60):
    """Digits 3 and 7 of MNIST as floats, relabelled 0 / 1, with names."""
    train, test = data.load_raw("mnist", data.locate_raw("mnist", [shared_data]))
    out = {}
    for split, raw, n in (("train", train, n_train), ("test", test, n_test)):
        idx = np.flatnonzero(np.isin(raw.labels, CLASSES))[:n]
        out[f"x_{split}"] = raw.images[idx].astype(np.float32) / 255.0
        out[f"y_{split}"] = (raw.labels[idx] == CLASSES[1]).astype(np.int64)
    np.savez(path, **out, class_names=np.array(["three", "seven"]))
    return path


def own_config(tmp_path, npz, **more):
    spec = {"source": "file", "path": str(npz), "classes": [0, 1]}
    spec |= {"n_train": 40, "n_test": 10, "eps": 0.3}
    return write_config(
        tmp_path,
        SMOKE,
        **{
            "datasets.own": spec,
            "architectures": {
                "fc1": {"family": "fc", "depth": 1},
                "fc2": {"family": "fc", "depth": 2},
                "twolayer": {"family": "twolayer"},
            },
            "kernels.datasets": ["own"],
            "features.datasets": ["own"],
            "features.main_archs": ["fc1", "fc2"],
            "features.notebook": {"dataset": "own", "arch": "fc1"},
            "attacks.notebook": None,
            "transfer.datasets": ["own"],
            "transfer.image_dataset": "own",
            "transfer.lr_overrides": {},
            **more,
        },
    )


def test_own_npz_runs_kernels_attacks_features_and_claims(tmp_path, shared_data):
    npz = own_npz(tmp_path / "own.npz", shared_data)
    cfg = own_config(tmp_path, npz)
    targets = [
        "results/tables/claims/attacks.csv",
        "results/tables/claims/features.csv",
    ]
    snakemake(tmp_path, cfg, *targets, "results/figures/attacks_examples_own.png")
    attrs = h5io.read_attrs(tmp_path / "results/data/own.h5")
    assert attrs["source"] == "file" and attrs["class_names"] == ["three", "seven"]
    assert list(attrs["checksums"]) == ["own.npz"]
    x = h5io.read(tmp_path / "results/data/own.h5", ["x_train"])["x_train"]
    assert x.shape == (40, 28, 28, 1) and 0.0 <= x.min() and x.max() <= 1.0
    for target in targets:
        table = pd.read_csv(tmp_path / target)
        own = table[table["dataset"] == "own"]
        assert len(own) > 0 and set(own["verdict"]) <= {"pass", "fail", "inconclusive"}


def test_a_broken_own_file_is_named_before_any_job(tmp_path, shared_data):
    npz = tmp_path / "own.npz"
    np.savez(npz, x_train=np.zeros((5, 4, 4, 1)), y_train=np.zeros(5, np.int64))
    cfg = own_config(tmp_path, npz)
    proc = snakemake(tmp_path, cfg, "-n", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "datasets.own.path" in out and "no array(s) ['x_test', 'y_test']" in out
    assert not (tmp_path / "results").exists()
    # and a relative path is read from the project directory
    config = yaml.safe_load(cfg.read_text())
    config["datasets"]["own"]["path"] = "no/such/own.npz"
    cfg.write_text(yaml.safe_dump(config))
    proc = snakemake(tmp_path, cfg, "-n", check=False)
    assert str(REPO / "no/such/own.npz") in proc.stdout + proc.stderr
