"""Tests of ntkadv.attacks.suite (plan, suite, nulls) and .task (checks, the rule)."""

from __future__ import annotations

import dataclasses
import math

import chex
import jax.numpy as jnp
import numpy as np
import pytest

from _shared import JacobianFromAutodiff, rbf_kernel_fn, regression_data
from ntkadv import losses
from ntkadv.attacks import closed_form, suite
from ntkadv.attacks.pgd import pgd
from ntkadv.attacks.task import (
    AttackBudget,
    AttackSettings,
    PredictorSettings,
    attack_kernel_machine,
    gradient_check,
    label_sets,
)
from ntkadv.claims import nulls
from ntkadv.config import settings_from
from ntkadv.spectra import eigh, predictor

EPS = 0.1


def _settings(eps_multipliers=(0.5, 2.0), n_perm=2, **budget) -> AttackSettings:
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
        "null_permutations": n_perm,
        "seed": 3,
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
    assert (s.null_permutations, s.seed) == (2, 3)


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
    assert plan.n_eval == 30 and plan.n_perm == 2
    # the ε-curve is for the true labels at t = ∞ only
    assert plan.eps_list(0, 3) == [0, 1, 2] and plan.eps_list(1, 3) == [1]
    assert plan.eps_list(0, 2) == [1]


@pytest.mark.parametrize("m", [5, 30])
def test_make_plan_follows_the_family_budget(m):
    taus = np.array([0.1, 1.0, 10.0, math.inf])
    budget = {"max_times": 2, "pgd_times": 1, "pgd_steps": 5, "eps_curve_pgd": False}
    s = _settings((1.0, 2.0), n_eval=10, block_size=7, **budget)
    plan = suite.make_plan(taus, taus, EPS, s, m=m)
    assert plan.time_idx == (0, 3) and plan.pgd_time_idx == (3,)
    assert plan.pgd_steps == 5 and plan.block_size == 7
    assert plan.eps_curve and not plan.eps_curve_pgd
    assert plan.eps_list(0, 3, pgd=True) == [0] and plan.eps_list(0, 3) == [0, 1]
    assert plan.pgd_times(0) == (3,) and plan.pgd_times(1) == ()
    np.testing.assert_allclose(plan.eps_values, [0.1, 0.2])
    assert plan.default_eps == 0
    assert plan.n_eval == min(m, 10)


def _machines(m=6, k=3, n_perm=2):
    """f_t of the rbf kernel on 24 points at t = 1 and ∞, true + permuted labels."""
    x_train, x_test, y_train = regression_data(n=24, m=m, k=k, seed=1)
    y = np.eye(k)[np.arange(m) % k] if k > 1 else np.where(np.arange(m) % 2, 1.0, -1.0)
    y = y if k > 1 else y[:, None]
    spec = eigh.eigendecompose(np.asarray(rbf_kernel_fn(x_train, x_train)))
    ys = label_sets(y_train, n_perm, seed=3)
    coefs = np.stack(
        [predictor.coefficients_path(spec, yy, [1.0, math.inf], lr=1.0) for yy in ys]
    )
    k_test = np.asarray(rbf_kernel_fn(x_test, x_train))
    f_clean = np.einsum("mn,stnk->stmk", k_test, coefs)
    jac = JacobianFromAutodiff(rbf_kernel_fn, x_test, x_train)
    return x_train, x_test, y, coefs, f_clean, jac


def _direct(x_train, x_pert, shape, c):
    """f at perturbed points by one direct kernel evaluation (no blocks, no tiles)."""
    k = np.asarray(rbf_kernel_fn(jnp.asarray(x_pert.reshape(-1, *shape)), x_train))
    return k @ c


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("tile_floats", [None, 1])
def test_attack_suite_matches_direct_evaluation_and_the_old_pgd(k, tile_floats, mp):
    """Every row against an independent evaluation: closed forms by direct kernel
    evaluation, PGD by the eager `pgd` (the previous implementation), random signs
    by perturbing with `nulls.random_signs`; robust = clean AND attacked. With
    tile_floats = 1 every evaluation point is its own tile (the same numbers)."""
    task = "binary" if k == 1 else "multiclass"
    if tile_floats:
        mp.setattr(suite, "TILE_FLOATS", tile_floats)
    x_train, x_test, y, coefs, f_clean, jac = _machines(k=k)
    taus = np.array([1.0, math.inf])
    plan = suite.make_plan(taus, taus, EPS, _settings(block_size=5), m=6)
    signs = nulls.random_signs((6, x_test[0].size), 0)
    rows, arrays, pointwise = suite.attack_suite(
        rbf_kernel_fn, x_train, x_test, y, task, coefs, f_clean,
        lambda i0, i1, c: jac.contract(c)[i0:i1], plan, signs=signs,
    )  # fmt: skip
    x, shape = x_test.reshape(6, -1), x_test.shape[1:]
    names = closed_form.attack_names(task)
    jobs = {(r["labels"], r["attack"], r["tau"], r["eps_mult"]) for r in rows}
    expected = set()
    for lab in ("true", "perm1", "perm2"):
        expected |= {(lab, "clean", tau, 0.0) for tau in taus}
        true = lab == "true"
        for a in (names if true else ("fgsm", "pgd")) + ("random_sign",):
            expected.add((lab, a, 1.0, 1.0))
            expected |= {
                (lab, a, math.inf, e) for e in ((0.5, 1.0, 2.0) if true else (1.0,))
            }
    assert jobs == expected and len(rows) == len(expected)
    for row in rows:
        s = 0 if row["labels"] == "true" else int(row["labels"][4:])
        j = list(plan.taus).index(row["tau"])
        clean = losses.predictions_correct(f_clean[s, j], y, task)
        assert row["n_eval"] == 6
        if row["attack"] == "clean":
            assert row["accuracy"] == row["accuracy_attacked"] == clean.mean()
            continue
        eps = row["eps"]
        c = coefs[s, j]
        grad_f = jac.contract(c)
        if row["attack"] == "fgsm":
            g = losses.loss_input_gradient(f_clean[s, j], grad_f, y, task)
            x_ref = closed_form.fgsm_step(x, g, eps)
        elif row["attack"] == "pgd":
            x_ref = pgd(rbf_kernel_fn, x, x_train, c, y, task, eps, 0.25 * eps, 2)
        elif row["attack"] == "random_sign":
            x_ref = closed_form.perturb(x, signs, eps)
        else:
            direction = closed_form.first_order_direction(
                f_clean[s, j], grad_f, row["attack"]
            )
            x_ref = closed_form.perturb(x, direction, eps)
        f_ref = _direct(x_train, x_ref, shape, c)
        ok = losses.predictions_correct(f_ref, y, task)
        assert row["accuracy_attacked"] == ok.mean(), row
        assert row["accuracy"] == (ok & clean).mean(), row
        e = plan.eps_values.index(eps)
        if s == 0 and row["attack"] != "random_sign":
            key = f"{row['attack']}/t{j}_e{e}"
            x_adv = arrays[f"x_adv/{key}"].reshape(6, -1)
            assert arrays[f"x_adv/{key}"].dtype == np.float32
            np.testing.assert_allclose(x_adv, x_ref, atol=1e-7)
            assert np.abs(x_adv - x).max() <= eps + 1e-6
            chex.assert_shape(arrays[f"f/{key}"], (6, k))
            np.testing.assert_allclose(arrays[f"f/{key}"], f_ref, rtol=1e-9, atol=1e-12)
        if e == plan.default_eps:
            np.testing.assert_array_equal(pointwise[row["attack"]][s, j], ok)
    np.testing.assert_array_equal(
        pointwise["clean"], losses.predictions_correct(f_clean, y, task)
    )
    for name in [n for n in names if n not in ("fgsm", "pgd")]:
        assert (pointwise[name][1:] == -1).all()  # label-free: true labels only


def test_robust_accuracy_does_not_count_points_fixed_by_a_label_free_attack(mp):
    """A misclassified point pushed to the right class is not robust."""
    x_train, x_test, y, coefs, f_clean, jac = _machines(k=1)
    taus = np.array([1.0, math.inf])
    plan = suite.make_plan(taus, taus, 0.6, _settings(n_perm=0), m=6)
    rows, _, pw = suite.attack_suite(
        rbf_kernel_fn, x_train, x_test, -np.asarray(y), "binary", coefs[:1],
        f_clean[:1], lambda i0, i1, c: jac.contract(c)[i0:i1], plan,
    )  # fmt: skip
    fo = [r for r in rows if r["attack"] == "first_order"]
    assert all(r["accuracy"] <= r["accuracy_attacked"] for r in rows)
    assert all(r["accuracy"] <= min(r["accuracy_attacked"], 1.0) for r in fo)
    clean = pw["clean"][0] == 1
    robust = clean & (pw["first_order"][0] == 1)
    assert not (robust & ~clean).any()


@pytest.fixture
def mp(monkeypatch):
    return monkeypatch


def test_gradient_check_of_an_exact_cache_is_tight():
    x_train, x_test, y, coefs, _, jac = _machines()
    c = coefs[0, 1]
    res = gradient_check(
        rbf_kernel_fn, x_train, x_test, c, jac.contract(c), y, "multiclass"
    )
    assert res["n_points"] == 6
    assert res["grad_f_rel_err"] < 1e-9 and res["loss_grad_rel_err"] < 1e-9
    assert res["sign_agreement"] == 1.0
    bad = gradient_check(
        rbf_kernel_fn, x_train, x_test, c, -jac.contract(c), y, "multiclass"
    )
    assert bad["grad_f_rel_err"] > 1.0 and bad["sign_agreement"] < 0.5


class _Cache:
    """The Jacobian cache interface of attack_kernel_machine (eval_subset, contract)."""

    def __init__(self, jac, i0=0, i1=None):
        self.jac, self.i0, self.i1 = jac, i0, i1

    def eval_subset(self, i0, i1):
        return _Cache(self.jac, self.i0 + i0, self.i0 + i1)

    def contract(self, c):
        return self.jac.contract(c)[self.i0 : self.i1]


def test_attack_kernel_machine_end_to_end():
    x_train, x_test, y, _, _, jac = _machines(m=8)
    y_train = regression_data(n=24, m=8, k=3, seed=1)[2]
    spec = eigh.eigendecompose(np.asarray(rbf_kernel_fn(x_train, x_train)))
    data = {
        "x_train": x_train,
        "y_train": y_train,
        "x_test": x_test,
        "y_test": y,
        "attrs": {"task": "multiclass"},
    }
    k_test = np.asarray(rbf_kernel_fn(x_test, x_train))
    s = _settings(pgd_times=1, n_eval=5)
    rows, checks, arrays, pw = attack_kernel_machine(
        rbf_kernel_fn, data, k_test, (spec.eigvals, spec.eigvecs), _Cache(jac), s
    )
    taus = arrays["taus"]
    np.testing.assert_allclose(taus, [0.1, 10.0, math.inf])  # tau_num 2, plus ∞
    np.testing.assert_allclose(arrays["times"], taus / spec.eigvals[0])
    assert all(r["task"] == "multiclass" and r["n_eval"] == 5 for r in rows)
    gram = eigh.reconstruct(spec)
    perms = nulls.label_permutations(24, 2, 3)
    for s_idx, yy in enumerate([y_train, y_train[perms[0]], y_train[perms[1]]]):
        c_inf = np.linalg.solve(gram, yy)
        lab = "true" if s_idx == 0 else f"perm{s_idx}"
        clean_inf = [
            r
            for r in rows
            if r["attack"] == "clean" and r["tau"] == math.inf and r["labels"] == lab
        ]
        acc = losses.accuracy(k_test[:5] @ c_inf, y[:5], "multiclass")
        assert clean_inf[0]["accuracy"] == pytest.approx(acc)
    pgd_taus = {r["tau"] for r in rows if r["attack"] == "pgd"}
    assert pgd_taus == {math.inf}  # pgd_times = 1: the last time only
    assert pw["pgd"].shape == (3, 3, 5)
    # PGD at t = ∞ only: the permuted-label machines skip it (no claim uses it)
    assert (pw["pgd"][:, :2] == -1).all() and (pw["pgd"][0, 2] >= 0).all()
    assert (pw["pgd"][1:] == -1).all()
    # checked at the middle of the attacked times and at ∞
    assert [c["tau"] for c in checks] == [10.0, math.inf]
    for c in checks:
        assert c["n_points"] == 2 and c["sign_agreement"] == 1.0
        assert c["grad_f_rel_err"] < 1e-9 and c["loss_grad_rel_err"] < 1e-9


def test_kernel_rows_fn_is_block_invariant():
    x_train, x_test, *_ = _machines(m=7)
    x = x_test.reshape(7, -1)
    ref = np.asarray(rbf_kernel_fn(x_test, x_train))
    for block in (1, 3, 7, 50):
        got = suite.kernel_rows_fn(rbf_kernel_fn, x_train, block)(x)
        np.testing.assert_allclose(got, ref, rtol=1e-13, atol=0)


@pytest.mark.parametrize(
    ("rows", "block", "expected"),
    [(1800, 500, 450), (1000, 500, 500), (650, 8, 8), (5, 500, 5), (7, 3, 3)],
)
def test_balanced_block(rows, block, expected):
    b = suite.balanced_block(rows, block)
    assert b == expected and b <= block
    calls = -(-rows // b)
    assert calls * b - rows < calls  # padding below one row per call


@pytest.mark.parametrize("k", [1, 3])
def test_suite_rows_pass_the_attack_check_and_a_flipped_gradient_fails_it(k):
    """`check_suite_rows` on real suite rows: the attacks pass; the same suite with
    the input Jacobian negated (every FGSM / PGD step descends the loss) raises."""
    from ntkadv.attacks.checks import AttackCheckError, check_suite_rows

    task = "binary" if k == 1 else "multiclass"
    x_train, x_test, y, coefs, f_clean, jac = _machines(m=12, k=k, n_perm=0)
    taus = np.array([1.0, math.inf])
    plan = suite.make_plan(taus, taus, 0.3, _settings(n_perm=0), m=12)

    def rows_of(sign):
        return suite.attack_suite(
            rbf_kernel_fn, x_train, x_test, y, task, coefs, f_clean,
            lambda i0, i1, c: sign * jac.contract(c)[i0:i1], plan,
        )[0]  # fmt: skip

    check_suite_rows(rows_of(1.0), "rbf unit")
    with pytest.raises(AttackCheckError, match="rbf unit, t "):
        check_suite_rows(rows_of(-1.0), "rbf unit")


def _four_time_machines(m=8, k=1, n_perm=3):
    """f_t of the rbf kernel on 24 points at τ = 0.1, 1, 10 and ∞ (true + P
    permuted labels) and the Jacobian contraction of the test points."""
    x_train, x_test, y_train = regression_data(n=24, m=m, k=k, seed=2)
    y = np.eye(k)[np.arange(m) % k] if k > 1 else np.where(np.arange(m) % 2, 1.0, -1.0)
    y = y if k > 1 else y[:, None]
    spec = eigh.eigendecompose(np.asarray(rbf_kernel_fn(x_train, x_train)))
    taus = np.array([0.1, 1.0, 10.0, math.inf])
    coefs = np.stack(
        [
            predictor.coefficients_path(spec, yy, list(taus), lr=1.0)
            for yy in label_sets(y_train, n_perm, seed=3)
        ]
    )
    f_clean = np.einsum(
        "mn,stnk->stmk", np.asarray(rbf_kernel_fn(x_test, x_train)), coefs
    )
    jac = JacobianFromAutodiff(rbf_kernel_fn, x_test, x_train)
    return x_train, x_test, y, coefs, f_clean, taus, jac


def _run(mach, plan, n_sets=None):
    x_train, x_test, y, coefs, f_clean, _, jac = mach
    task = "binary" if y.shape[1] == 1 else "multiclass"
    n_sets = coefs.shape[0] if n_sets is None else n_sets
    return suite.attack_suite(
        rbf_kernel_fn, x_train, x_test, y, task, coefs[:n_sets], f_clean[:n_sets],
        lambda i0, i1, c: jac.contract(c)[i0:i1], plan,
        signs=nulls.random_signs((x_test.shape[0], x_test[0].size), 0),
    )  # fmt: skip


def _true_part(result):
    rows, arrays, pointwise = result
    true_rows = [r for r in rows if r["labels"] == "true"]
    return true_rows, arrays, {k: v[..., 0, :, :] if k.startswith("extra") else v[0]
                               for k, v in pointwise.items()}  # fmt: skip


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("tile_floats", [None, 200])
def test_true_label_results_are_bit_identical_whatever_the_null_plan(
    k, tile_floats, mp
):
    """The true-label machine's rows, arrays and per-point tables do not depend on
    the permuted machines (none, P = 3 attacked everywhere, P = 3 attacked at two
    times): exact equality, with tiles of one or several points and PGD / kernel
    blocks that differ in size between the plans."""
    if tile_floats:
        mp.setattr(suite, "TILE_FLOATS", tile_floats)
    mach = _four_time_machines(k=k)
    taus = mach[5]
    s = _settings(block_size=3, pgd_times=3, n_perm=3)
    full = suite.make_plan(taus, taus, EPS, s, m=8)
    few = dataclasses.replace(full, null_times=(1, 3), null_pgd_times=(1, 3))
    none = dataclasses.replace(full, n_perm=0)
    ref_rows, ref_arrays, ref_pw = _true_part(_run(mach, none, n_sets=1))
    for plan in (full, few):
        rows, arrays, pw = _true_part(_run(mach, plan))
        assert rows == ref_rows
        assert list(arrays) == list(ref_arrays)
        for name, value in ref_arrays.items():
            np.testing.assert_array_equal(arrays[name], value, err_msg=name)
        assert list(pw) == list(ref_pw)
        for name, value in ref_pw.items():
            np.testing.assert_array_equal(pw[name], value, err_msg=name)


@pytest.mark.parametrize("k", [1, 3])
def test_permuted_machines_attacked_entries_equal_the_full_attack(k):
    """Restricting the permuted machines to a few times (`null_times`) leaves
    their entries at those times exactly as the full attack computes them, and
    marks every other attacked entry "not run" (−1, no row); clean stays full."""
    mach = _four_time_machines(k=k)
    taus = mach[5]
    full = suite.make_plan(taus, taus, EPS, _settings(pgd_times=3, n_perm=3), m=8)
    few = dataclasses.replace(full, null_times=(1, 3), null_pgd_times=(3,))
    assert few.closed_times(0) == full.time_idx == (0, 1, 2, 3)
    assert few.closed_times(2) == (1, 3) and few.pgd_times(2) == (3,)
    assert full.pgd_time_idx == (0, 2, 3) and few.pgd_times(0) == (0, 2, 3)
    rows_f, _, pw_f = _run(mach, full)
    rows_r, _, pw_r = _run(mach, few)
    np.testing.assert_array_equal(pw_r["clean"], pw_f["clean"])
    for attack, times in (("fgsm", (1, 3)), ("random_sign", (1, 3)), ("pgd", (3,))):
        for j in range(len(taus)):
            if j in times:
                np.testing.assert_array_equal(pw_r[attack][1:, j], pw_f[attack][1:, j])
                assert (pw_r[attack][1:, j] >= 0).all()
            else:
                assert (pw_r[attack][1:, j] == -1).all(), (attack, j)
    key = ("labels", "attack", "tau", "eps")
    full_rows = {tuple(r[c] for c in key): r for r in rows_f}
    for r in rows_r:
        assert r == full_rows[tuple(r[c] for c in key)]
    null_attacked = {
        (r["attack"], r["tau"]) for r in rows_r if r["labels"] != "true"
    } - {("clean", t) for t in taus}
    assert null_attacked == {
        ("fgsm", 1.0), ("fgsm", math.inf), ("random_sign", 1.0),
        ("random_sign", math.inf), ("pgd", math.inf),
    }  # fmt: skip


def test_with_null_times_takes_the_claims_tau_early_and_infinity():
    """`with_null_times` attacks the permuted machines at exactly the τ the
    claims read: `early_times` of the true-label machine (per fold) and t = ∞."""
    from ntkadv.attacks.pointwise import Pointwise, early_times

    rng = np.random.default_rng(0)
    m, taus = 80, np.array([0.1, 1.0, 10.0, 100.0, math.inf])
    labels = np.arange(m) % 2
    # clean accuracy rising with τ: useless at 0.1, useful from 1 (fold-dependent)
    p_ok = np.array([0.5, 0.8, 0.9, 0.95, 0.95])
    clean = rng.random((5, m)) < p_ok[:, None]
    s = _settings(n_perm=2, pgd_times=3)
    plan = suite.make_plan(taus, taus, EPS, s, m=m)
    got = suite.with_null_times(plan, clean, labels, seed=4)
    ran = np.full((1, 5, m), -1, np.int8)
    for attack, times, null in (
        ("fgsm", plan.time_idx, got.null_times),
        ("pgd", plan.pgd_time_idx, got.null_pgd_times),
    ):
        table = ran.copy()
        table[0, list(times)] = 1
        pw = Pointwise(
            "d", "a", taus, labels,
            {"clean": clean[None].astype(np.int8), attack: table},
        )  # fmt: skip
        j_of, reason = early_times(pw, attack, seed=4)
        assert bool(reason) == (j_of.size == 0)  # no τ_early: t = ∞ only
        assert null == tuple(sorted(set(j_of.tolist()) | {4}))
        assert all(j in times for j in null)
    assert got.null_times != (4,)  # a finite τ_early was found
    useless = suite.with_null_times(plan, np.zeros((5, m), bool), labels, seed=4)
    assert useless.null_times == useless.null_pgd_times == (4,)
