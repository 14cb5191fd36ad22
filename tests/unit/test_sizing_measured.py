"""Tests of the measured-rate requests of ntkadv.sizing (issue 24): the attack-plan
row count against the attack suite's own plan, and the requests of the shipped paper
configs against the measured extrapolation (benchmarks/bench_scaling.py)."""

from __future__ import annotations

import dataclasses
import types
from pathlib import Path

import numpy as np
import pytest
import yaml

from ntkadv import sizing
from ntkadv.attacks.closed_form import FIRST_ORDER
from ntkadv.attacks.suite import make_plan
from ntkadv.configcheck import resolve_extends

REPO = Path(__file__).resolve().parents[2]
PAPER_CONFIGS = ("config/paper.yaml", "config/paper_kernels.yaml")


def _config(name: str) -> dict:
    return resolve_extends(yaml.safe_load((REPO / name).read_text()), str(REPO))


def _suite_rows(config: dict, family: str, dataset: str) -> dict[str, int]:
    """Rows per point enumerated the way ntkadv.attacks.suite does (closed-form
    points of `_closed_form_points`, PGD rows of `_pgd_tile`)."""
    att, ds = config["attacks"], config["datasets"][dataset]
    t = config["predictor"]["tau_num"] + 1
    taus = np.append(np.logspace(0, 1, t - 1), np.inf)
    budget = types.SimpleNamespace(
        **{
            "max_times": None,
            "pgd_times": None,
            "pgd_steps": None,
            "eps_curve": True,
            "eps_curve_pgd": True,
            "n_eval": None,
            "block_size": None,
            **att["budget"][family],
        }
    )
    settings = types.SimpleNamespace(
        budget=budget,
        eps_multipliers=att["eps_multipliers"],
        pgd_steps=att["pgd_steps"],
        pgd_rel_step=att["pgd_rel_step"],
        block_size=att["block_size"],
        null_permutations=att["null_permutations"],
    )
    plan = make_plan(taus, taus, ds["eps"], settings, ds["n_test"])
    # the permuted machines' times (`with_null_times`) at their most: the first
    # two attacked times and t = ∞ (two folds' τ_early + ∞)
    plan = dataclasses.replace(
        plan,
        null_times=(*plan.time_idx[:2], t - 1),
        null_pgd_times=(*plan.pgd_time_idx[:2], t - 1),
    )
    task = "binary" if len(ds["classes"]) == 2 else "multiclass"
    fo = len(FIRST_ORDER[task])
    sets = 1 + plan.n_perm
    closed = sum(
        (1 + (fo if s == 0 else 0)) * len(plan.eps_list(s, j))
        for s in range(sets)
        for j in plan.closed_times(s)
    )
    closed += len({e for j in plan.time_idx for e in plan.eps_list(0, j)})
    pgd = sum(
        len(plan.eps_list(s, j, pgd=True))
        for s in range(sets)
        for j in plan.pgd_times(s)
    )
    return {
        "closed": closed,
        "pgd_row_steps": pgd * plan.pgd_steps,
        "pgd_rows": pgd,
        "m": plan.n_eval,
    }


@pytest.mark.parametrize("name", ["config.yaml", *PAPER_CONFIGS])
@pytest.mark.parametrize("family", ["fc", "conv", "twolayer"])
@pytest.mark.parametrize("dataset", ["mnist", "cifar2"])
def test_attack_rows_count_the_suites_plan(name, family, dataset):
    config = _config(name)
    assert sizing.attack_rows(config, family, dataset) == _suite_rows(
        config, family, dataset
    )


def test_rates_file_records_every_measured_rule_with_provenance():
    data = sizing.measured_rates()
    assert {"commits", "machine", "date", "load"} <= set(data["measured"])
    for rule in sizing.MEASURED_RULES:
        families = ("fc",) if rule == "evaluate_topr_kernels" else ("fc", "conv")
        for family in families:
            rate = data["rates"][rule][family]
            assert len({p["n_train"] for p in rate["series"]}) >= 3
            assert rate["a"] > 0 and rate["rate_at_largest"] > 0


def _jobs(config: dict):
    """(rule, dataset, arch spec) of every kernel-half job of `config`."""
    for dataset in config["kernels"]["datasets"]:
        for name, arch in config["architectures"].items():
            for rule in sizing.MEASURED_RULES:
                if rule == "compute_ntk_input_jacobian":
                    continue  # its requests are not measured-rate based (yet)
                if (
                    rule == "evaluate_topr_kernels"
                    and name != (config["features"]["topr"]["arch"])
                ):
                    continue
                yield rule, dataset, name, arch


@pytest.mark.parametrize("name", PAPER_CONFIGS)
def test_paper_requests_are_within_2x_of_the_measured_extrapolation(name):
    """Every request is >= the measured extrapolation (CPU seconds x depth factor,
    fitted peak RSS) and <= 2x it, unless it sits at its floor."""
    config = _config(name)
    for rule, dataset, _, arch in _jobs(config):
        family = sizing.RATE_FAMILY[arch["family"]]
        sizes = sizing.work_sizes(rule, arch["family"], config, dataset)
        minutes = (
            sizing.measured_cpu_s(rule, family, sizes)
            * sizing.depth_factor(rule, arch)
            / 60
        )
        got = sizing.measured_request(rule, "runtime", config, dataset, arch)
        assert got >= minutes
        assert got <= 2 * minutes or got == 10.0
        rss = sizing.measured_rss_mb(rule, family, sizes)
        mem = sizing.measured_request(rule, "mem_mb", config, dataset, arch)
        assert rss <= mem <= 2 * rss or mem == 1000.0


def test_measured_cpu_is_the_larger_of_power_law_and_largest_rate():
    rates = sizing.measured_rates()["rates"]["eigendecompose_gram"]["fc"]
    sizes = {"n": 10000, "m": 1000, "d": 3072}
    u = sizing.work_units("eigendecompose_gram", sizes)
    got = sizing.measured_cpu_s("eigendecompose_gram", "fc", sizes)
    assert got == max(rates["a"] * u ** rates["b"], rates["rate_at_largest"] * u)


@pytest.mark.parametrize(("depth", "factor"), [(1, 1.0), (2, 2.5)])
def test_conv_depth_scales_kernel_row_rules_only(depth, factor):
    arch = {"family": "conv", "depth": depth}
    assert sizing.depth_factor("attack_ntk", arch) == factor
    assert sizing.depth_factor("eigendecompose_gram", arch) == 1.0
    assert sizing.depth_factor("attack_ntk", {"family": "fc", "depth": 5}) == 1.0
