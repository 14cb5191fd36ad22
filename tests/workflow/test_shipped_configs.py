"""Every shipped config runs end to end, at reduced size.

tests/config/smoke.yaml and smoke_null.yaml are run in full by the smoke fixtures
(test_workflow.py, test_attacks_null.py, test_features_null.py); config.yaml and
config/null.yaml have their structure (stages, datasets, kernel families, regimes)
at those smoke sizes. config/paper.yaml and config/notebook.yaml are run here with
their own structure — which stages are enabled, their datasets (renamed datasets such
as ``mnist60k`` included), regimes, seeds, linearisation, notebook tables — and the
sizes of the smoke config (images, epochs, widths, grids), keeping one architecture
per kernel family so the run stays in minutes.
"""

from __future__ import annotations

import copy
import re

import pandas as pd
import pytest
import yaml
from test_workflow import REPO, snakemake, write_config

from ntkadv.claims.core import COLUMNS
from ntkadv.configcheck import resolve_extends

SMOKE = REPO / "tests/config/smoke.yaml"
#: Keys that decide what a config runs (kept from the shipped config); every other
#: key of these sections takes the smoke config's value.
STRUCTURE = {
    "kernels": ("datasets", "x64"),
    "attacks": ("architectures", "example_arch", "notebook"),
    "features": ("datasets", "image_arch", "main_archs", "notebook"),
    "transfer": ("datasets", "solver"),
    "dynamics": ("regimes", "kernel_inputs"),
}


def _load(path):
    return resolve_extends(yaml.safe_load(path.read_text()), str(REPO))


def reduced(config: dict, smoke: dict) -> dict:
    """`config`'s structure at the smoke config's sizes (see the module docstring)."""
    out = copy.deepcopy(smoke)
    out["seed"] = config["seed"]
    by_source = {ds["source"]: ds for ds in smoke["datasets"].values()}
    out["datasets"] = {}
    for name, ds in config["datasets"].items():
        small = smoke["datasets"].get(name, by_source[ds["source"]])
        out["datasets"][name] = dict(
            ds, n_train=small["n_train"], n_test=small["n_test"]
        )
    families: dict[str, str] = {}
    for arch, spec in config["architectures"].items():
        families.setdefault(spec["family"], arch)
    used = list(families.values())
    out["architectures"] = {a: config["architectures"][a] for a in used}
    for section, keys in STRUCTURE.items():
        for key in keys:
            if key in config.get(section, {}):
                out[section][key] = copy.deepcopy(config[section][key])
    att = out["attacks"]
    if att.get("architectures") is not None:  # null = every architecture
        att["architectures"] = [a for a in att["architectures"] if a in used] or used
    fallback = families.get("fc", used[0])
    for section, key in (("attacks", "example_arch"), ("features", "image_arch")):
        if out[section].get(key) not in used:
            out[section][key] = fallback
    feat = out["features"]
    feat["main_archs"] = [a for a in feat["main_archs"] if a in used] or [fallback]
    arch = config["features"].get("topr", {}).get("arch")  # sizes stay the smoke's
    feat["topr"]["arch"] = arch if arch in used else fallback
    for section in ("attacks", "features"):
        note = out[section].get("notebook")
        if note and note.get("arch") not in used:
            note["arch"] = fallback
    dyn = config.get("dynamics", {})
    if not dyn.get("datasets"):  # the stage is off (schema default: no datasets)
        out["dynamics"]["datasets"] = {}
        out["dynamics"]["linearize"] = {"datasets": []}
        return out
    small = {e["model"]: e for e in smoke["dynamics"]["datasets"].values()}
    out["dynamics"]["datasets"] = {
        name: dict(small[entry["model"]]) for name, entry in dyn["datasets"].items()
    }
    out["dynamics"]["seeds"] = dyn["seeds"][:1]  # smoke runs two; one here
    lin = dyn["linearize"]
    out["dynamics"]["linearize"] = {
        "datasets": lin["datasets"],
        "epochs": [0, 1][: len(lin["epochs"])],
        "seeds": [s for s in lin["seeds"] if s in out["dynamics"]["seeds"]][:1],
    }
    return out


# config/paper_kernels.yaml is config/paper.yaml with transfer and dynamics off and a
# CONV attack plan whose keys the smoke config's conv budget already exercises; its
# reduced end-to-end run (~240 s) would repeat the paper run's kernel half, so it is
# checked by the full-size dry run below (test_paper_kernels_is_...), not here.
@pytest.mark.slow
@pytest.mark.parametrize("name", ["config/paper.yaml", "config/notebook.yaml"])
def test_shipped_config_runs_end_to_end_at_reduced_size(tmp_path, name):
    config = reduced(_load(REPO / name), _load(SMOKE))
    base = write_config(tmp_path, SMOKE)  # absolute data dirs
    config["data"] = yaml.safe_load(base.read_text())["data"]
    cfg = tmp_path / "reduced.yaml"
    cfg.write_text(yaml.safe_dump(config))
    snakemake(tmp_path, cfg, timeout=3000)
    proc = snakemake(tmp_path, cfg, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr
    claims = pd.read_csv(tmp_path / "results/tables/claims.csv")
    assert set(COLUMNS) <= set(claims.columns)
    assert set(claims["verdict"]) <= {"pass", "fail", "inconclusive"}
    assert list((tmp_path / "results/figures").glob("*.png"))
    if config["attacks"].get("notebook"):
        assert (tmp_path / "results/tables/notebook_reference.csv").exists()


def test_reduced_keeps_the_structure_of_the_paper_config():
    paper = _load(REPO / "config/paper.yaml")
    out = reduced(paper, _load(SMOKE))
    assert set(out["datasets"]) == set(paper["datasets"])
    assert set(out["dynamics"]["datasets"]) == set(paper["dynamics"]["datasets"])
    assert out["kernels"]["datasets"] == paper["kernels"]["datasets"]
    assert {s["family"] for s in out["architectures"].values()} == {
        s["family"] for s in paper["architectures"].values()
    }
    assert all(d["n_train"] <= 60 for d in out["datasets"].values())


def test_paper_kernels_is_the_kernel_half_at_the_papers_sizes(tmp_path):
    """config/paper_kernels.yaml validates and dry-runs at full size: the kernel
    half of config/paper.yaml (its datasets, sizes, architectures, every test point
    for the features), no transfer or dynamics job, and every kernel-half job's
    runtime request from the measured rates (ntkadv.sizing.measured_request), once
    per ε (the paper's and datasets.<d>.extra_eps), plus one recompute pass of a
    CONV kernel's gradient tiles (ntkadv.sizing.jacobian_recompute_min)."""
    from ntkadv import sizing

    config = _load(REPO / "config/paper_kernels.yaml")
    paper = _load(REPO / "config/paper.yaml")
    for name in config["kernels"]["datasets"]:
        assert config["datasets"][name] == paper["datasets"][name]
    assert config["datasets"]["cifar2"]["n_train"] == 10000
    assert config["architectures"] == paper["architectures"]
    assert all(v is None for v in config["features"]["n_eval"].values())
    cfg = write_config(tmp_path, REPO / "config/paper_kernels.yaml")
    out = snakemake(tmp_path, cfg, "-n", "--forceall").stdout
    rules = set(re.findall(r"^(?:local)?rule (\w+):", out, flags=re.M))
    assert "attack_ntk" in rules and "score_features" in rules
    assert not rules & {"train_twolayer_net", "train_dynamics_network"}
    jobs = re.findall(
        r"rule (attack_ntk|score_features):.*?wildcards: dataset=(\w+), arch=(\w+)"
        r".*?runtime=(\d+)",
        out,
        flags=re.S,
    )
    assert len(jobs) == 2 * 2 * len(config["architectures"])
    for rule, dataset, arch, runtime in jobs:
        spec = config["architectures"][arch]
        ds = config["datasets"][dataset]
        passes = 1 + len(ds.get("extra_eps") or [])
        n, m, d = ds["n_train"], ds["n_test"], sizing.input_dim(ds["source"])
        want = passes * sizing.measured_request(
            rule, "runtime", config, dataset, spec
        ) + sizing.jacobian_recompute_min(n, m, d, spec["family"])
        assert int(runtime) == int(want)
