"""Finding 4 at an extra ε (datasets.<d>.extra_eps): the plan runs FGSM and PGD at
every attacked time and label set at that ε, the suite's extra tables are the
default tables when the extra ε is the dataset's, an empty key changes nothing,
and the extra-ε numbers (not the paper-ε ones) reach the tagged claims row, which
passes on a robust early predictor and does not pass when the claim is false (the
criterion is `finding4_rows`, tested in test_attacks_claims.py)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from test_attacks_claims import TAUS, _labels, _pointwise
from test_attacks_suite import EPS, _machines, _settings

from _shared import rbf_kernel_fn
from ntkadv import h5io
from ntkadv.attacks import claims as ac
from ntkadv.attacks import pointwise as apw
from ntkadv.attacks import suite
from ntkadv.attacks.summary import extra_pointwise


def _plan(extra=(), taus=(1.0, math.inf), **budget):
    s = _settings(eps_multipliers=(0.5, 2.0), **budget)
    if extra:
        s = dataclasses.replace(s, extra_eps=tuple(extra))
    taus = np.asarray(taus)
    return suite.make_plan(taus, taus, EPS, s, m=6)


def test_extra_eps_values_reuse_a_curve_point_and_append_others():
    curve = [0.05, 0.1, 0.2]
    assert suite.extra_eps_values(curve, ()) == ((0.05, 0.1, 0.2), ())
    assert suite.extra_eps_values(curve, (0.5 * 0.1,)) == ((0.05, 0.1, 0.2), (0,))
    values, idx = suite.extra_eps_values(curve, (0.07, 0.1))
    assert values == (0.05, 0.1, 0.2, 0.07) and idx == (3, 1)


def test_plan_without_extra_eps_is_unchanged():
    plan = _plan()
    assert plan.extra_eps == () and plan.n_curve is None
    for s in range(3):
        for j in range(2):
            for pgd in (False, True):
                assert plan.attack_eps(s, j, pgd) == plan.eps_list(s, j, pgd)


def test_plan_runs_fgsm_and_pgd_at_the_extra_eps_everywhere():
    plan = _plan(extra=(0.07,))
    assert plan.eps_values == (0.05, 0.1, 0.2, 0.07) and plan.extra_eps == (3,)
    assert plan.n_curve == 3
    assert plan.eps_list(0, 1) == [0, 1, 2]  # the curve keeps its values
    for s in range(3):
        for j in range(2):
            assert 3 in plan.attack_eps(s, j) and 3 in plan.attack_eps(s, j, True)
            assert 3 not in plan.eps_list(s, j)
    # PGD at t = inf only (the CONV budget): finding 4 leaves PGD out, no extras
    inf_only = _plan(extra=(0.07,), pgd_times=1)
    assert 3 not in inf_only.attack_eps(0, 1, pgd=True)
    assert 3 in inf_only.attack_eps(0, 0)


def _run(plan, k=3):
    task = "binary" if k == 1 else "multiclass"
    x_train, x_test, y, coefs, f_clean, jac = _machines(k=k)
    return suite.attack_suite(
        rbf_kernel_fn, x_train, x_test, y, task, coefs, f_clean,
        lambda i0, i1, c: jac.contract(c)[i0:i1], plan,
    )  # fmt: skip


@pytest.mark.parametrize("k", [1, 3])
def test_extra_tables_at_the_dataset_eps_equal_the_default_tables(k):
    """Extra ε = the dataset's ε: the extra tables are the paper-ε tables, and every
    paper-ε output (rows, pointwise tables) equals the run without the key."""
    rows0, arrays0, pw0 = _run(_plan(), k)
    rows, arrays, pw = _run(_plan(extra=(EPS,)), k)
    assert not any(key.startswith("extra_") for key in pw0)
    for name in ("fgsm", "pgd"):
        np.testing.assert_array_equal(pw[f"extra_{name}"][0], pw[name])
        assert (pw[f"extra_{name}"] >= 0).all()  # every (set, time) attacked
    for name, table in pw0.items():
        np.testing.assert_array_equal(pw[name], table)
    key = ("labels", "attack", "tau", "eps")
    as_set = {tuple(r[c] for c in key): r["accuracy"] for r in rows}
    for r in rows0:
        assert as_set[tuple(r[c] for c in key)] == r["accuracy"]
    for name, value in arrays0.items():
        np.testing.assert_array_equal(arrays[name], value)


def test_extra_tables_off_the_curve():
    rows, _, pw = _run(_plan(extra=(0.07,)))
    assert pw["extra_fgsm"].shape == (1, 3, 2, 6)
    assert (pw["extra_fgsm"] >= 0).all() and (pw["extra_pgd"] >= 0).all()
    extra_rows = [r for r in rows if np.isclose(r["eps"], 0.07)]
    assert {r["attack"] for r in extra_rows} == {"fgsm", "pgd"}
    assert {r["labels"] for r in extra_rows} == {"true", "perm1", "perm2"}


# ---------------------------------------------------------------- claims wiring

S = 5
PASSING = (
    np.array([[0.85] * 4] + [[0.5] * 4] * (S - 1)),
    np.array([[0.7, 0.7, 0.4, 0.05]] + [[0.3, 0.3, 0.2, 0.1]] * (S - 1)),
)


def _floor(m=200):
    """Every machine ~0-robust at every time (the paper-ε floor of MNIST)."""
    return np.array([[0.85] * 4] + [[0.5] * 4] * (S - 1)), np.zeros((S, 4))


def _exchangeable(seed):
    rng = np.random.default_rng(seed)
    clean = np.full((S, 4), 0.5) + rng.uniform(-0.05, 0.05, (1, 4))
    return clean, np.tile([0.4, 0.3, 0.2, 0.05], (S, 1))


def _write(tmp_path, arch, paper, extra):
    """pointwise.h5 with the paper-ε tables of `paper` and the extra-ε (0.075)
    tables of `extra` (both (clean, robust) probabilities per set and time; the
    clean draws of `extra` are used, as the file has one clean table)."""
    labels = _labels()
    pw = _pointwise(*extra, labels, dataset="mnist", arch=arch)
    pw0 = _pointwise(*paper, labels, dataset="mnist", arch=arch + "x")
    correct = {
        "clean": pw.correct["clean"],
        "fgsm": pw0.correct["fgsm"] & pw.correct["clean"],
        "pgd": pw0.correct["pgd"] & pw.correct["clean"],
        "random_sign": pw.correct["random_sign"],
        "extra_fgsm": pw.correct["fgsm"][None],
        "extra_pgd": pw.correct["pgd"][None],
    }
    path = tmp_path / f"{arch}.h5"
    names = ["fgsm", "pgd", "random_sign", "clean"]
    attrs = {"dataset": "mnist", "arch": arch, "attacks": names, "eps": 0.3}
    h5io.write(
        path,
        apw.pointwise_arrays(TAUS, labels, correct),
        attrs | {"extra_eps": [0.075]},
    )
    return str(path), pw


def _rows(paths):
    pws = [apw.read_pointwise(p) for p in paths]
    extra = extra_pointwise(paths)
    table = ac.attack_claims(pws, pd.DataFrame(), None, 0.1, extra=extra)
    f4 = table[table["finding"] == 4]
    paper = f4[~f4["claim"].str.contains("at ε = 0.075")]
    at = f4[f4["claim"].str.contains("at ε = 0.075")]
    assert len(paper) == len(at) == 1
    return paper.iloc[0], at.iloc[0], extra


def test_extra_eps_row_passes_off_the_floor_and_carries_the_extra_numbers(tmp_path):
    out = [_write(tmp_path, a, _floor(), PASSING) for a in ("fc1", "fc2")]
    paper, at, extra = _rows([p for p, _ in out])
    assert [(e, p) for e, p, _ in extra] == [(0.075, 0.3)]
    assert at["verdict"] == "pass", at["note"]
    assert paper["verdict"] != "pass"
    assert "the paper's ε is 0.3" in at["claim"]
    assert at["claim"].startswith(ac.CLAIM_4)
    (direct,) = ac.finding4_rows([pw for _, pw in out], {})
    assert (at["effect"], at["effect_se"]) == (direct["effect"], direct["effect_se"])


@pytest.mark.parametrize("seed", range(4))
def test_extra_eps_row_does_not_pass_when_the_claim_is_false(tmp_path, seed):
    out = [
        _write(tmp_path, f"k{i}", PASSING, _exchangeable(seed + 10 * i))
        for i in range(3)
    ]
    paper, at, _ = _rows([p for p, _ in out])
    assert at["verdict"] != "pass", at["note"]


def test_no_extra_eps_no_extra_rows(tmp_path):
    labels = _labels()
    pw = _pointwise(*PASSING, labels, dataset="mnist", arch="fc1")
    path = tmp_path / "p.h5"
    names = ["fgsm", "pgd", "random_sign", "clean"]
    h5io.write(
        path,
        apw.pointwise_arrays(TAUS, labels, pw.correct),
        {"dataset": "mnist", "arch": "fc1", "attacks": names, "eps": 0.3},
    )
    assert apw.read_pointwise_extra(str(path)) == []
    assert extra_pointwise([str(path)]) == []
