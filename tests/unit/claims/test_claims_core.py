"""Tests of ntkadv.claims.core and nulls: the verdict rule can fail, SEs are right."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ntkadv.claims import core, nulls


@pytest.mark.parametrize(
    ("effect", "se", "min_effect", "expected"),
    [
        (0.3, 0.1, 0.0, "pass"),
        (0.2, 0.1, 0.0, "pass"),  # exactly 2 SE
        (0.19, 0.1, 0.0, "inconclusive"),
        (-0.2, 0.1, 0.0, "fail"),
        (0.3, 0.1, 0.5, "inconclusive"),  # significant but below the stated minimum
        (0.0, 0.0, 0.0, "inconclusive"),
        (1e-9, 0.0, 0.0, "pass"),
        (math.nan, 0.1, 0.0, "inconclusive"),
        (0.3, math.nan, 0.0, "inconclusive"),
    ],
)
def test_verdict_rule(effect, se, min_effect, expected):
    assert core.verdict(effect, se, min_effect) == expected


def _ev(effect, se, **kw):
    return core.Evidence("s", 1.0, 0.5, effect, se, "m", **kw)


def test_conjunction_reports_the_binding_part():
    status, bind = core.combine([_ev(0.5, 0.1), _ev(0.3, 0.1)])
    assert status == "pass" and bind.effect == 0.3
    assert core.combine([_ev(0.5, 0.1), _ev(0.1, 0.1)])[0] == "inconclusive"
    assert core.combine([_ev(0.5, 0.1), _ev(-0.5, 0.1)])[0] == "fail"


def test_inconclusive_rows_say_what_would_resolve_them():
    row = core.claim_row(1, "d", "c", _ev(0.1, 0.1, n=50), "crit", "f.png")
    assert row["verdict"] == "inconclusive"
    # SE ∝ 1/√n: 2·0.1·√50/√n = 0.1 -> n = 200
    assert "~200 evaluation points" in row["note"]
    assert set(row) == set(core.COLUMNS)


def test_a_statistic_stuck_at_its_null_everywhere_is_called_unresolvable():
    """Zero effect with zero SE (e.g. PGD robust accuracy 0 for the claim and its
    null at every point): no size resolves it, and the note says so."""
    stuck = core.Evidence("robust accuracy", 0.0, 0.0, 0.0, 0.0, "m", n=200)
    row = core.claim_row(4, "d", "c", [_ev(0.3, 0.1, n=50), stuck], "crit", "f.png")
    assert row["verdict"] == "inconclusive"
    assert "unresolvable at these settings" in row["note"]
    assert "to resolve: ~" not in row["note"]


def test_identity_rows_have_no_null():
    ok = core.identity_row(14, "all", "c", "err", 1e-12, 1e-8)
    bad = core.identity_row(14, "all", "c", "err", 1e-6, 1e-8)
    assert ok["verdict"] == "pass" and bad["verdict"] == "fail"
    assert np.isnan(ok["null"]) and ok["effect_se"] == 0


def test_bootstrap_se_of_a_mean_matches_the_formula():
    x = np.random.default_rng(0).normal(size=400)
    se = core.bootstrap_se(lambda idx: x[idx].mean(), x.size, reps=2000)
    assert se == pytest.approx(x.std(ddof=1) / math.sqrt(x.size), rel=0.1)


def test_seed_se_and_majority_rate():
    assert core.seed_se([1.0, 3.0], [0.0, 0.0]) == pytest.approx(1.0)
    assert math.isnan(core.seed_se([1.0], [0.0, 1.0]))
    assert core.majority_rate(np.array([0, 1, 1, 2])) == 0.5


def test_critical_value_is_the_student_t_quantile_of_the_two_se_level():
    """Closed forms of the t quantile: df 1 is Cauchy, df 2 is (2p−1)/√(2p(1−p))."""
    p = 0.5 * (1 + math.erf(core.Z_CRIT / math.sqrt(2)))  # Φ(2)
    assert core.critical_value(None) == core.critical_value(math.inf) == 2.0
    assert core.critical_value(1) == pytest.approx(math.tan(math.pi * (p - 0.5)))
    assert core.critical_value(2) == pytest.approx(
        (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    )
    assert core.critical_value(1e7) == pytest.approx(2.0, abs=1e-5)
    assert core.critical_value(0) == math.inf
    assert core.critical_value(math.nan) == math.inf
    assert core.verdict(0.3, 0.1) == "pass"
    assert core.verdict(0.3, 0.1, df=2) == "inconclusive"  # 3 SE < 4.5
    assert core.verdict(-0.5, 0.1, df=2) == "fail"


def test_seed_df_is_welch_satterthwaite():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=3), rng.normal(size=5) * 2
    va, vb = a.var(ddof=1) / 3, b.var(ddof=1) / 5
    welch = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 4)
    assert core.seed_df(a, b) == pytest.approx(welch)
    assert 2 <= core.seed_df(a, b) <= 6
    assert core.seed_df([1.0, 2.0, 3.0], [5.0, 6.0, 7.0]) == pytest.approx(4.0)
    assert core.seed_df([1.0, 2.0], [0.0, 0.0]) == pytest.approx(1.0)  # a threshold
    assert math.isnan(core.seed_df([1.0], [0.0, 1.0]))
    assert core.combined_df(0.0, 0.1, 3.0) == pytest.approx(3.0)
    assert core.combined_df(0.1, 0.1, 3.0) == pytest.approx(12.0)
    assert core.combined_df(0.1, 0.0, math.nan) is None


def test_two_seed_regime_differences_under_the_null_pass_at_the_nominal_rate():
    """Feed the rule a false claim: both regimes from one distribution, two seeds
    each. Judged at 2 SE the Welch SE (1-2 df) lets ~9 % through; at the t critical
    value the false-pass rate is back at the nominal Φ(−2) ≈ 2.3 %."""
    rng = np.random.default_rng(5)
    runs, plain, student = 4000, 0, 0
    for a, b in rng.normal(size=(runs, 2, 2)):
        effect, se = a.mean() - b.mean(), core.seed_se(a, b)
        plain += core.verdict(effect, se) == "pass"
        student += core.verdict(effect, se, df=core.seed_df(a, b)) == "pass"
    assert plain / runs > 0.06  # the old rule: a false claim passes 1 run in 11
    assert student / runs < 0.03


def test_resolving_size_accounts_for_the_seed_df():
    """Brute force: the smallest n with t(df(n))·SE·√(n₀/n) <= |effect|."""
    ev = _ev(0.1, 0.1, n=2, df=2.0, unit="seeds per regime")

    def ok(n):
        return core.critical_value(2.0 * (n - 1)) * 0.1 * math.sqrt(2 / n) <= 0.1

    need = core.resolving_size(ev)
    assert ok(need) and not ok(need - 1)
    assert need > core.resolving_size(_ev(0.1, 0.1, n=2))  # 8 in large samples
    row = core.claim_row(8, "d", "c", ev, "crit", "f.png")
    assert row["verdict"] == "inconclusive"
    assert f"~{need} seeds per regime" in row["note"]
    assert "critical value 4.5" in row["note"] and "df 2" in row["note"]


def test_a_statistic_under_the_null_does_not_pass():
    """Feed the rule data where the claim is false: the "true" labels are one more
    random labelling, compared with P further ones (SE = bootstrap ⊕ permutation
    spread). Over 400 simulated runs the false-pass rate stays near 2.5 %."""
    rng = np.random.default_rng(1)
    m, p, passes = 60, 8, 0
    for _ in range(400):
        labels = rng.integers(0, 2, (p + 1, m))  # random labellings of m points
        truth = rng.integers(0, 2, m)
        correct = labels == truth  # a label-blind classifier's correctness
        stat = correct.mean(axis=1)  # accuracy per labelling
        effect = stat[0] - stat[1:].mean()
        boot = core.bootstrap_se(
            lambda idx, c=correct: c[0, idx].mean() - c[1:, idx].mean(), m, reps=200
        )
        se = math.sqrt(boot**2 + stat[1:].var(ddof=1) * (1 + 1 / p))
        passes += core.verdict(effect, se) == "pass"
    assert passes / 400 < 0.05


def test_permutations_are_reproducible_and_distinct_from_the_data_stream():
    a = nulls.label_permutations(50, 3, seed=0)
    assert a.shape == (3, 50) and (np.sort(a, axis=1) == np.arange(50)).all()
    np.testing.assert_array_equal(a, nulls.label_permutations(50, 3, seed=0))
    assert not any((row == nulls.data_permutation(50, 0)).all() for row in a)
    assert nulls.label_permutations(5, 0, 0).shape == (0, 5)
    signs = nulls.random_signs((1000,), 0)
    assert set(np.unique(signs)) == {-1.0, 1.0} and abs(signs.mean()) < 0.1
    assert (nulls.mismatched(4) != np.arange(4)).all()


# ---------------------------------------------------------------- replicate spreads


def test_two_permutation_spreads_of_a_false_claim_pass_at_the_nominal_rate():
    """2000 null draws of effect = measured − mean of P = 2 permuted statistics,
    all from one distribution (the claim is false), SE² = sd_perm²(1 + 1/P): the
    ratio is t with 1 df, so at 2 SE ~15 % pass; at `replicate_se`'s df the rate
    is Φ(−2) = 2.3 % (binomial SE 0.33 %)."""
    rng = np.random.default_rng(11)
    runs, plain, student = 2000, 0, 0
    for draw in rng.normal(size=(runs, 3)):
        measured, perms = draw[0], draw[1:]
        se, df = core.replicate_se(0.0, np.std(perms, ddof=1), 2, 1 + 1 / 2)
        assert df == pytest.approx(1.0)
        effect = measured - perms.mean()
        plain += core.verdict(effect, se) == "pass"
        student += core.verdict(effect, se, df=df) == "pass"
    assert plain / runs > 0.10
    assert abs(student / runs - 0.0228) < 0.012


def test_permutation_spread_plus_a_bootstrap_part_is_only_approximately_nominal():
    """SE² = SE_boot² + sd_perm²(1 + 1/P) with a known bootstrap part as large as
    the permutation spread (P = 2). The plug-in Satterthwaite df grows when sd_perm
    happens to be small, so the false-pass rate is ~4.5 %, not 2.3 % (2 SE: ~5.5 %);
    df = P − 1 (the spread alone) is conservative (~0 %). A known limit of the rule,
    stated in `core.replicate_se`."""
    rng = np.random.default_rng(12)
    runs, plain, student, floor, se_boot = 2000, 0, 0, 0, 1.0
    for draw in rng.normal(size=(runs, 4)):
        perms = draw[1:3]
        effect = draw[0] - perms.mean() + se_boot * draw[3]  # point noise on top
        se, df = core.replicate_se(se_boot, np.std(perms, ddof=1), 2, 1.5)
        plain += core.verdict(effect, se) == "pass"
        student += core.verdict(effect, se, df=df) == "pass"
        floor += core.verdict(effect, se, df=1.0) == "pass"
    assert floor / runs < 0.0228 < student / runs < plain / runs
    assert student / runs < 0.06


def test_replicate_se_and_resolving_size_with_fixed_replicates():
    se, df = core.replicate_se(0.3, 0.4, 4, 1.25)
    assert se == pytest.approx(math.sqrt(0.09 + 0.16 * 1.25))
    assert df == pytest.approx(core.combined_df(0.3, 0.4 * math.sqrt(1.25), 3))
    assert math.isnan(core.replicate_se(0.3, 0.4, 1, 2.0)[0])  # one replicate
    assert core.replicate_se(0.3, 0.0, 2, 1.5) == (0.3, 1.0)  # equal replicates
    # df from 4 permutations stays at df as evaluation points grow: n·(c·SE/effect)²
    ev = _ev(0.1, 0.1, n=100, df=df, replicates=4)
    need = core.resolving_size(ev)
    assert need == math.ceil(100 * (core.critical_value(df) * 0.1 / 0.1) ** 2)
    row = core.claim_row(4, "d", "c", ev, "crit", "f.png")
    assert (
        row["verdict"] == "inconclusive" and f"~{need} evaluation points" in row["note"]
    )
    assert "of 4 replicates" in row["note"]


def test_resolving_size_keeps_the_part_of_the_se_that_points_do_not_shrink():
    """A label-permutation spread (`Evidence.se_fixed`) stays as evaluation points
    grow: an effect below c·se_fixed has no resolving size, a larger one needs more
    points than if the whole SE shrank, and the verdict itself does not change
    (issue 20 item 7: the null run's finding-1 row named ~114 evaluation points for
    an SE that is mostly the spread over label permutations)."""
    assert core.resolving_size(_ev(0.1, 0.1, n=100)) == 400  # all of the SE shrinks
    dominated = _ev(0.1, 0.1, n=100, se_fixed=0.06)  # 2 * 0.06 >= 0.1
    assert core.resolving_size(dominated) is None
    row = core.claim_row(1, "d", "c", dominated, "crit", "f.png")
    assert row["verdict"] == "inconclusive"
    assert "no number of evaluation points if the spread" in row["note"]
    assert "~400 if it shrinks with them as well" in row["note"]
    part = _ev(0.1, 0.1, n=100, se_fixed=0.03)
    need = math.ceil(100 * (0.1**2 - 0.03**2) / ((0.1 / 2) ** 2 - 0.03**2))
    assert core.resolving_size(part) == need == 569
    row = core.claim_row(1, "d", "c", part, "crit", "f.png")
    assert f"~{need} evaluation points" in row["note"] and "spread stays" in row["note"]
    assert "~400 if it shrinks as well" in row["note"]
    # with a permutation df the critical value is held at that df
    held = _ev(0.1, 0.05, n=100, df=10.0, replicates=11, se_fixed=0.04)
    c = core.critical_value(10.0)
    want = math.ceil(100 * (0.05**2 - 0.04**2) / ((0.1 / c) ** 2 - 0.04**2))
    assert core.resolving_size(held) == want
    assert core.resolving_size(_ev(0.1, 0.05, n=100, df=10.0, se_fixed=0.05)) is None
    for ev in (dominated, part, held):
        assert ev.verdict == core.verdict(ev.effect, ev.se, df=ev.df) == "inconclusive"


# ---------------------------------------------------------------- equivalence


@pytest.mark.parametrize(
    ("value", "se", "df", "expected"),
    [
        (0.01, 0.005, None, "pass"),  # UCB 0.02 < 0.05
        (0.01, 0.005, 2.0, "pass"),  # UCB 0.01 + 4.5·0.005 = 0.033 < 0.05
        (0.10, 0.01, None, "fail"),  # LCB 0.08 > 0.05
        (0.02, 0.01, 2.0, "inconclusive"),  # inside, but UCB 0.065 > 0.05
        (0.02, 0.01, None, "pass"),  # the same with a large-sample SE: UCB 0.04
    ],
)
def test_equivalence_passes_only_below_the_margin_at_the_upper_bound(
    value, se, df, expected
):
    ev = core.equivalence_evidence("std", value, se, 0.05, "m", df=df)
    assert ev.verdict == expected
    lo, hi = core.confidence_bounds(value, se, df)
    assert (ev.verdict == "pass") == (hi < 0.05)
    assert (ev.verdict == "fail") == (lo > 0.05)
    row = core.claim_row(5, "d", "c", ev, "crit", "f.png")
    assert row["verdict"] == expected and "margin 0.05" in row["note"]


def test_equivalence_with_a_three_replicate_spread_inside_the_margin():
    """Three seeds with std 0.02 < margin 0.05: SE of the std s/√(2(S−1)) = 0.01 at
    df 2, UCB 0.02 + 4.53·0.01 = 0.065 > 0.05: inconclusive, not a pass."""
    s = float(np.std([0.0, 0.02, 0.04], ddof=1))
    se, df = core.replicate_se(0.0, s, 3, 1 / (2 * 2))
    ev = core.equivalence_evidence("std over 3 seeds", s, se, 0.05, "m", df=df)
    assert s < 0.05 and df == pytest.approx(2.0)
    assert ev.verdict == "inconclusive"
    assert core.verdict(0.05 - s, se) == "pass"  # at 2 SE the point estimate passed


# ---------------------------------------------------------------- pooled rows


def test_a_pooled_row_fails_when_one_member_fails():
    """Pooled 0.123 ± 0.019 above a 0.1 threshold passes as a pool, but members
    FC3 and FC4 fail at their own SEs: the row fails and names the worst."""
    pooled = _ev(0.123, 0.019)
    members = {
        "fc1": _ev(0.3, 0.03),
        "fc3": _ev(-0.1, 0.03),
        "fc4": [_ev(0.3, 0.03), _ev(-0.2, 0.03)],
        "conv1": _ev(0.05, 0.03),
    }
    assert pooled.verdict == "pass"
    row = core.claim_row(6, "d", "c", pooled, "crit", "f.png", members=members)
    assert row["verdict"] == "fail"
    assert row["effect"] == -0.2 and "[member fc4]" in row["statistic"]
    for name, verdict in (("fc1", "pass"), ("fc3", "fail"), ("conv1", "inconclusive")):
        assert f"{name}: " in row["note"] and f"({verdict})" in row["note"]
    assert "pooled verdict pass" in row["note"]


def test_a_pooled_row_of_agreeing_members_keeps_its_verdict():
    members = {"a": _ev(0.3, 0.03), "b": _ev(0.05, 0.03)}  # b inconclusive
    row = core.claim_row(6, "d", "c", _ev(0.2, 0.02), "crit", "f", members=members)
    assert row["verdict"] == "pass" and row["effect"] == 0.2
    bad = {"a": _ev(0.3, 0.03), "b": _ev(-0.05, 0.01, df=1.0)}  # −5 SE < 13.9 SE
    row = core.claim_row(6, "d", "c", _ev(0.2, 0.02), "crit", "f", members=bad)
    assert row["verdict"] == "pass"  # b is not a fail at its own df-1 SE


def test_family_wise_critical_value_is_bonferroni_at_the_one_test_level():
    from scipy.special import ndtr, ndtri, stdtrit

    assert core.critical_value(None, 1) == core.Z_CRIT
    alpha = ndtr(-core.Z_CRIT)
    for tests in (2, 24, 56):
        assert core.critical_value(None, tests) == pytest.approx(
            ndtri(1 - alpha / tests)
        )
        assert core.critical_value(3.0, tests) == pytest.approx(
            stdtrit(3.0, 1 - alpha / tests)
        )
    assert core.critical_value(None, 56) == pytest.approx(3.35, abs=0.01)
    assert core.critical_value(-1.0, 8) == math.inf


def test_one_of_many_members_at_its_own_two_se_does_not_fail_the_row():
    """56 member tests (as the chance-corrected f3 row has): a member at −2.5 SE
    fails its own single test but not at the family-wise 3.35 SE, so the pooled
    verdict stands; a member at −5 SE fails the row."""
    members = {f"m{i}": _ev(0.3, 0.1) for i in range(55)}
    row = core.claim_row(
        3,
        "d",
        "c",
        _ev(0.3, 0.02),
        "crit",
        "f",
        members={**members, "noisy": _ev(-0.25, 0.1)},
    )
    assert row["verdict"] == "pass"
    assert (
        "noisy: -0.25 ± 0.1 (fails at its own SE only, not family-wise)"
        in (row["note"])
    )
    assert "family-wise over 56 member tests: 3.348 SE" in row["note"]
    row = core.claim_row(
        3,
        "d",
        "c",
        _ev(0.3, 0.02),
        "crit",
        "f",
        members={**members, "bad": _ev(-0.5, 0.1)},
    )
    assert row["verdict"] == "fail" and "[member bad]" in row["statistic"]


def test_family_wise_member_rule_holds_its_level_on_true_members():
    """56 members whose true effect is 0 (z ~ N(0, 1)), 4,000 simulated rows: the
    single-test rule fails ~73 % of them, the family-wise rule ~2.3 %; a member at
    a true −4 SE is still found in most rows (power)."""
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4000, 56))
    single = np.mean((z <= -core.Z_CRIT).any(axis=1))
    family = np.mean(
        [any(core.fails_at(_ev(float(v), 1.0), 56) for v in row) for row in z]
    )
    assert single > 0.6
    assert family < 0.04
    z[:, 0] -= 4.0
    power = np.mean([core.fails_at(_ev(float(v), 1.0), 56) for v in z[:, 0]])
    assert power > 0.6


def test_inconclusive_rows_say_whether_the_resolving_size_fits_this_machine():
    """With a cost per unit the note names the added CPU time and whether it is
    within `AFFORD_JOB_S`; without one it says nothing about cost."""
    cheap = _ev(0.1, 0.1, n=50, unit_job_s=1.0)  # 150 more points: 2.5 job-min
    row = core.claim_row(1, "d", "c", cheap, "crit", "f.png")
    assert "~200 evaluation points" in row["note"]
    assert "affordable on this machine" in row["note"]
    dear = _ev(0.1, 0.1, n=50, unit_job_s=60.0)  # 150 job-min
    row = core.claim_row(1, "d", "c", dear, "crit", "f.png")
    assert "not affordable in the default run" in row["note"]
    plain = core.claim_row(1, "d", "c", _ev(0.1, 0.1, n=50), "crit", "f.png")
    assert "affordable" not in plain["note"]


def test_an_effect_below_the_minimum_is_not_resolved_by_size():
    """A positive effect below the claim's minimum effect cannot pass at any n:
    `resolving_size` must not name one (it used to size the minimum instead)."""
    ev = _ev(0.05, 0.1, n=50, min_effect=0.2)
    assert core.resolving_size(ev) is None
    row = core.claim_row(1, "d", "c", ev, "crit", "f.png")
    assert row["verdict"] == "inconclusive"
    assert "below the claim's minimum effect" in row["note"]
    assert "to resolve: ~" not in row["note"]
    # at or above the minimum the size is the one that makes it significant
    assert core.resolving_size(_ev(0.3, 0.2, n=50, min_effect=0.2)) == 89
