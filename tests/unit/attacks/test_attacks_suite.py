"""Tests of ntkadv.attacks.suite (plan, suite) and .task (gradient check, the rule)."""

from __future__ import annotations

import math

import chex
import numpy as np
import pytest

from _shared import JacobianFromAutodiff, rbf_kernel_fn, regression_data
from ntkadv import losses
from ntkadv.attacks import closed_form, suite
from ntkadv.attacks.task import (
    AttackBudget,
    AttackSettings,
    PredictorSettings,
    attack_kernel_machine,
    gradient_check,
)
from ntkadv.config import settings_from
from ntkadv.spectra import eigh, predictor

EPS = 0.1


def _settings(eps_multipliers=(0.5, 2.0), **budget) -> AttackSettings:
    """Rule params of attack_ntk, through `settings_from` as the rule builds them."""
    params = {
        "arch": {"family": "fc"},
        "eps": EPS,
        "x64": True,
        "predictor": {
            "lr": 1.0,
            "tau_log10_min": -1.0,
            "tau_log10_max": 1.0,
            "tau_num": 2,
        },
        "eps_multipliers": list(eps_multipliers),
        "pgd_steps": 2,
        "pgd_rel_step": 0.25,
        "block_size": 4,
        "n_gradient_check": 2,
        "budget": budget,
    }
    return settings_from(AttackSettings, params)


@pytest.mark.parametrize(
    ("n", "k", "expected"),
    [
        (5, None, [0, 1, 2, 3, 4]),
        (5, 9, [0, 1, 2, 3, 4]),
        (5, 0, []),
        (5, 1, [4]),
        (5, 2, [0, 4]),
        (9, 3, [0, 4, 8]),
    ],
)
def test_subsample_indices(n, k, expected):
    assert suite.subsample_indices(n, k) == expected


def test_settings_are_typed_and_nested():
    s = _settings(max_times=2)
    assert isinstance(s.predictor, PredictorSettings)
    assert s.budget == AttackBudget(max_times=2)
    assert s.eps_multipliers == (0.5, 2.0)


def test_make_plan_without_budget_runs_everything():
    taus = np.array([0.1, 1.0, 10.0, math.inf])
    plan = suite.make_plan(taus, 2 * taus, EPS, _settings(), m=30)
    assert plan.taus == (0.1, 1.0, 10.0, math.inf)
    assert plan.times == (0.2, 2.0, 20.0, math.inf)
    np.testing.assert_allclose(plan.eps_values, [0.05, 0.1, 0.2])
    assert plan.default_eps == 1
    assert plan.time_idx == plan.pgd_time_idx == (0, 1, 2, 3)
    assert (plan.pgd_steps, plan.pgd_rel_step, plan.block_size) == (2, 0.25, 4)
    assert plan.eps_curve and plan.eps_curve_pgd
    assert plan.n_eval == 30


@pytest.mark.parametrize("m", [5, 30])
def test_make_plan_follows_the_family_budget(m):
    taus = np.array([0.1, 1.0, 10.0, math.inf])
    budget = {"max_times": 2, "pgd_times": 1, "pgd_steps": 5, "eps_curve_pgd": False}
    s = _settings((1.0, 2.0), n_eval=10, **budget)
    plan = suite.make_plan(taus, taus, EPS, s, m=m)
    assert plan.time_idx == (0, 3) and plan.pgd_time_idx == (3,)
    assert plan.pgd_steps == 5
    assert plan.eps_curve and not plan.eps_curve_pgd
    np.testing.assert_allclose(plan.eps_values, [0.1, 0.2])
    assert plan.default_eps == 0
    assert plan.n_eval == min(m, 10)


def _kernel_machine(m=6, k=3):
    """f_t of the rbf kernel on 24 points at t = 1 and t = ∞ (coefs (2, n, k))."""
    x_train, x_test, y_train = regression_data(n=24, m=m, k=k, seed=1)
    y = np.eye(k)[np.arange(m) % k]
    spec = eigh.eigendecompose(np.asarray(rbf_kernel_fn(x_train, x_train)))
    coefs = predictor.coefficients_path(spec, y_train, [1.0, math.inf], lr=1.0)
    f_clean = np.einsum(
        "mn,tnk->tmk", np.asarray(rbf_kernel_fn(x_test, x_train)), coefs
    )
    jac = JacobianFromAutodiff(rbf_kernel_fn, x_test, x_train)
    grad_f = {j: jac.contract(coefs[j]) for j in range(2)}
    return x_train, x_test, y, spec, coefs, f_clean, grad_f, jac


def test_attack_suite_rows_and_arrays_match_direct_evaluation():
    x_train, x_test, y, _, coefs, f_clean, grad_f, _ = _kernel_machine()
    taus = np.array([1.0, math.inf])
    plan = suite.make_plan(taus, taus, EPS, _settings(), m=6)
    rows, arrays = suite.attack_suite(
        rbf_kernel_fn, x_train, x_test, y, "multiclass", coefs, f_clean, grad_f, plan
    )
    x = x_test.reshape(6, -1)
    names = closed_form.attack_names("multiclass")
    assert names == ("fgsm", "pgd", "max_l1", "sum_dz")
    # t = 1: the dataset's ε only; t = ∞: the whole ε-curve (PGD included)
    jobs = {(r["attack"], r["tau"], r["eps_mult"]) for r in rows}
    expected = {("clean", tau, 0.0) for tau in taus}
    expected |= {(a, 1.0, 1.0) for a in names}
    expected |= {(a, math.inf, e) for a in names for e in (0.5, 1.0, 2.0)}
    assert jobs == expected and len(rows) == len(expected)
    for row in rows:
        j = list(plan.taus).index(row["tau"])
        assert row["n_eval"] == 6
        if row["attack"] == "clean":
            assert row["accuracy"] == losses.accuracy(f_clean[j], y, "multiclass")
            continue
        e = plan.eps_values.index(row["eps"])
        key = f"{row['attack']}/t{j}_e{e}"
        x_adv = arrays[f"x_adv/{key}"].reshape(6, -1)
        assert arrays[f"x_adv/{key}"].dtype == np.float32
        assert np.abs(x_adv - x).max() <= row["eps"] + 1e-6
        assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
        f_adv = arrays[f"f/{key}"]
        chex.assert_shape(f_adv, (6, 3))
        assert row["accuracy"] == losses.accuracy(f_adv, y, "multiclass")
        if row["attack"] == "fgsm":  # the closed form, evaluated independently
            g = losses.loss_input_gradient(f_clean[j], grad_f[j], y, "multiclass")
            x_ref = closed_form.fgsm_step(x, g, row["eps"])
            f_ref = np.asarray(rbf_kernel_fn(x_ref.reshape(x_test.shape), x_train))
            np.testing.assert_allclose(f_adv, f_ref @ coefs[j], rtol=1e-10)


def test_gradient_check_of_an_exact_cache_is_tight():
    x_train, x_test, y, _, coefs, _, grad_f, _ = _kernel_machine()
    res = gradient_check(
        rbf_kernel_fn, x_train, x_test, coefs[1], grad_f[1], y, "multiclass"
    )
    assert res["n_points"] == 6
    assert res["grad_f_rel_err"] < 1e-9 and res["loss_grad_rel_err"] < 1e-9
    assert res["sign_agreement"] == 1.0
    bad = gradient_check(
        rbf_kernel_fn, x_train, x_test, coefs[1], -grad_f[1], y, "multiclass"
    )
    assert bad["grad_f_rel_err"] > 1.0 and bad["sign_agreement"] < 0.5


def test_attack_kernel_machine_end_to_end():
    x_train, x_test, y, spec, _, _, _, _ = _kernel_machine(m=8)
    y_train = regression_data(n=24, m=8, k=3, seed=1)[2]
    data = {
        "x_train": x_train,
        "y_train": y_train,
        "x_test": x_test,
        "y_test": y,
        "attrs": {"task": "multiclass"},
    }
    k_test = np.asarray(rbf_kernel_fn(x_test, x_train))
    jac = JacobianFromAutodiff(rbf_kernel_fn, x_test, x_train)
    s = _settings(pgd_times=1, n_eval=5)
    rows, checks, arrays = attack_kernel_machine(
        rbf_kernel_fn, data, k_test, (spec.eigvals, spec.eigvecs), jac, s
    )
    taus = arrays["taus"]
    np.testing.assert_allclose(taus, [0.1, 10.0, math.inf])  # tau_num 2, plus ∞
    np.testing.assert_allclose(arrays["times"], taus / spec.eigvals[0])
    assert all(r["task"] == "multiclass" and r["n_eval"] == 5 for r in rows)
    c_inf = np.linalg.solve(eigh.reconstruct(spec), y_train)
    clean_inf = [r for r in rows if r["attack"] == "clean" and r["tau"] == math.inf]
    acc = losses.accuracy(k_test[:5] @ c_inf, y[:5], "multiclass")
    assert clean_inf[0]["accuracy"] == acc
    pgd_taus = {r["tau"] for r in rows if r["attack"] == "pgd"}
    assert pgd_taus == {math.inf}  # pgd_times = 1: the last time only
    # checked at the middle of the attacked times and at ∞
    assert [c["tau"] for c in checks] == [10.0, math.inf]
    for c in checks:
        assert c["n_points"] == 2 and c["sign_agreement"] == 1.0
        assert c["grad_f_rel_err"] < 1e-9 and c["loss_grad_rel_err"] < 1e-9
