"""Tests of finding 5's criteria (ntkadv.transfer.claims) on synthetic runs: each
criterion passes where the claim clearly holds and does not pass where it is false
(random or shared-direction gradients, uninformative or random-like attacks,
seed-dependent nets, no width effect)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ntkadv.claims import core
from ntkadv.claims.nulls import mismatched
from ntkadv.transfer.claims import (
    TransferRuns,
    alignment_epoch,
    cosine_row,
    informative_epochs,
    robust_row,
    seed_row,
    transfer_claims,
    width_row,
)
from ntkadv.transfer.experiment import partner_cosine, same_class_partners
from ntkadv.transfer.net import cosine_similarity

W, S, E, B, D = 2, 3, 4, 200, 40
EPOCHS = np.array([1, 10, 100, 1000])
CRITERIA = {
    "min_cosine": 0.9,
    "max_robust_gap": 0.05,
    "max_seed_std": 0.05,
    "bootstrap_reps": 300,
}


def _gradients(rng, shared: float, noise: float, shape=(W, S, E, B)):
    """(NTK, net) gradient pairs: net = NTK + noise; NTK = shared·u + own direction.

    `shared` is the weight of one direction u common to every point (it makes
    gradients of different points alike); `noise` the net's deviation.
    """
    u = rng.normal(size=D)
    ntk = shared * u + rng.normal(size=(*shape, D))
    net = ntk + noise * math.sqrt(1 + shared**2) * rng.normal(size=(*shape, D))
    return ntk, net


def _cosines(ntk, net):
    flat_ntk, flat_net = ntk.reshape(-1, B, D), net.reshape(-1, B, D)
    other = mismatched(B)
    pairs = list(zip(flat_ntk, flat_net, strict=True))
    cos = np.stack([cosine_similarity(a, b) for a, b in pairs])
    mm = np.stack([cosine_similarity(a, b[other]) for a, b in pairs])
    return cos.reshape(ntk.shape[:-1]), mm.reshape(ntk.shape[:-1])


def _runs(
    cos, mm, own=None, ntk=None, rnd=None, widths=(1000, 10000), seeds=None, same=None
):
    shape = cos.shape
    ones = np.ones(shape, bool)
    return TransferRuns(
        dataset="toy",
        widths=np.asarray(widths[: shape[0]]),
        seeds=np.arange(shape[1]) if seeds is None else np.asarray(seeds),
        epochs=EPOCHS[: shape[2]],
        cosine=cos,
        cosine_mismatched=mm,
        cosine_same_class=mm if same is None else same,
        correct_clean=ones,
        correct_own=ones if own is None else own,
        correct_ntk=ones if ntk is None else ntk,
        correct_random=ones if rnd is None else rnd,
    )


def _verdict(row) -> str:
    assert set(row) == set(core.COLUMNS)
    return row["verdict"]


# ---------------------------------------------------------------- 5a


def test_cosine_passes_when_net_gradients_follow_the_ntk():
    ntk, net = _gradients(np.random.default_rng(0), shared=0.0, noise=0.1)
    row = cosine_row(_runs(*_cosines(ntk, net)), 0.9, 1000, 300, 0)
    assert _verdict(row) == "pass"
    assert row["effect"] > 0 and row["figure"].endswith("transfer_curves_toy.png")


def test_cosine_of_random_gradients_does_not_pass():
    """Independent NTK and net gradients: same-point cosine ≈ mismatched ≈ 0."""
    rng = np.random.default_rng(1)
    ntk = rng.normal(size=(W, S, E, B, D))
    net = rng.normal(size=(W, S, E, B, D))
    row = cosine_row(_runs(*_cosines(ntk, net)), 0.9, 1000, 300, 0)
    assert _verdict(row) == "fail"


def test_cosine_near_one_for_every_pair_does_not_pass():
    """Gradients dominated by one shared direction: cosine > 0.9 for the same point
    AND for mismatched pairs, so "near 1" passes but the control must stop it."""
    ntk, net = _gradients(np.random.default_rng(2), shared=8.0, noise=0.0)
    net = ntk[:, :, :, mismatched(B)[::-1]]  # net gradient of an unrelated point
    cos, mm = _cosines(ntk, net)
    assert cos.mean() > 0.95 and abs(cos.mean() - mm.mean()) < 0.01
    row = cosine_row(_runs(cos, mm), 0.9, 1000, 300, 0)
    assert _verdict(row) != "pass"
    assert "mismatched" in row["statistic"]  # the binding part is the control


def test_cosine_of_a_shared_class_direction_does_not_pass():
    """Binary-CIFAR-like gradients: ±(class direction) plus a small point-specific
    part, and the net's gradient is the NTK's of ANOTHER point of the same class.
    The same-point cosine is ~0.95 and the i+1 control (classes alternate, ~0) is
    beaten, but the same-class control shows there is no point-specific agreement."""
    rng = np.random.default_rng(20)
    labels = rng.integers(0, 2, B)
    u = rng.normal(size=D)
    sign = np.where(labels == 1, 1.0, -1.0)[:, None]
    ntk = sign * u * 4 + rng.normal(size=(W, S, E, B, D))
    partner = same_class_partners(labels)
    net = ntk[:, :, :, partner] + 0.1 * rng.normal(size=ntk.shape)
    cos, mm = _cosines(ntk, net)
    flat_ntk, flat_net = ntk.reshape(-1, B, D), net.reshape(-1, B, D)
    same = np.stack(
        [partner_cosine(a, b, partner) for a, b in zip(flat_ntk, flat_net, strict=True)]
    ).reshape(cos.shape)
    assert cos.mean() > 0.9 and cos.mean() - mm.mean() > 0.5
    row = cosine_row(_runs(cos, mm, same=same), 0.9, 1000, 300, 0)
    assert _verdict(row) != "pass"
    assert "same class" in row["statistic"]


def test_same_class_partners_are_a_derangement_within_each_class():
    labels = np.array([0, 1, 0, 2, 1, 0])
    partner = same_class_partners(labels)
    np.testing.assert_array_equal(partner, [2, 4, 5, -1, 1, 0])
    ok = partner >= 0
    assert (labels[partner[ok]] == labels[ok]).all() and (
        partner[ok] != np.flatnonzero(ok)
    ).all()
    cos = partner_cosine(np.eye(6), np.eye(6), partner)
    assert np.isnan(cos[3]) and np.allclose(cos[ok], 0.0)


def test_cosine_below_min_cosine_does_not_pass():
    ntk, net = _gradients(np.random.default_rng(3), shared=0.0, noise=0.8)
    cos, mm = _cosines(ntk, net)
    assert 0.6 < cos.mean() < 0.85
    row = cosine_row(_runs(cos, mm), 0.9, 1000, 300, 0)
    assert _verdict(row) == "fail" and "min_cosine" in row["statistic"]


def test_cosine_uses_the_widest_width_and_the_alignment_epoch():
    rng = np.random.default_rng(4)
    cos = rng.uniform(0.0, 0.2, size=(W, S, E, B))
    cos[-1, :, 2] = 0.99  # only width index -1, epoch 100
    mm = np.zeros_like(cos)
    assert _verdict(cosine_row(_runs(cos, mm), 0.9, 100, 300, 0)) == "pass"
    assert _verdict(cosine_row(_runs(cos, mm), 0.9, 1000, 300, 0)) == "fail"
    assert alignment_epoch(EPOCHS, 120) == 2 and alignment_epoch(EPOCHS, 5000) == 3


def test_cosine_se_with_one_seed_is_the_paired_bootstrap():
    rng = np.random.default_rng(5)
    cos = rng.uniform(0.5, 1.0, size=(1, 1, 1, B))
    mm = rng.uniform(-0.2, 0.2, size=(1, 1, 1, B))
    row = cosine_row(_runs(cos, mm, widths=(1000,)), 0.9, 1, 300, 7)
    c, m = cos[0, 0, 0], mm[0, 0, 0]
    se_diff = core.bootstrap_se(lambda i: c[i].mean() - m[i].mean(), B, 300, 7)
    se_level = core.bootstrap_se(lambda i: c[i].mean() - 0.9, B, 300, 7)
    part = row["statistic"]
    assert row["effect_se"] == pytest.approx(
        se_level if "min_cosine" in part else se_diff
    )
    assert f"{se_diff:.4g}" in row["note"] and f"{se_level:.4g}" in row["note"]


# ---------------------------------------------------------------- 5b


def _accuracies(rng, p_own, p_ntk, p_rnd, agree=1.0):
    """Correct-clean-and-perturbed flags (W, S, E, B); ntk copies own on a fraction
    `agree` of the points (else independent with rate p_ntk)."""
    shape = (W, S, E, B)
    own = rng.random(shape) < p_own
    ntk = np.where(rng.random(shape) < agree, own, rng.random(shape) < p_ntk)
    rnd = rng.random(shape) < p_rnd
    return own, ntk, rnd


def _robust(own, ntk, rnd):
    cos = np.full(own.shape, 0.5)
    return robust_row(_runs(cos, cos, own, ntk, rnd), 0.05, 300, 0)


def test_informative_epochs_match_a_loop():
    rng = np.random.default_rng(6)
    own = rng.random((S, E, B)) < np.array([0.8, 0.7, 0.3, 0.79])[:, None]
    rnd = rng.random((S, E, B)) < 0.8
    expected = []
    for e in range(E):
        d = [np.mean([int(rnd[s, e, i]) - int(own[s, e, i]) for s in range(S)])
             for i in range(B)]  # fmt: skip
        mean, se = np.mean(d), np.std(d, ddof=1) / math.sqrt(B)
        expected.append(bool(mean > 0 and mean >= 2 * se))
    np.testing.assert_array_equal(informative_epochs(own, rnd), expected)
    assert informative_epochs(own, rnd)[2]


def test_robust_passes_when_the_ntk_attack_matches_the_own_attack():
    own, ntk, rnd = _accuracies(np.random.default_rng(7), 0.2, 0.2, 0.9, agree=1.0)
    row = _robust(own, ntk, rnd)
    assert _verdict(row) == "pass"
    assert "informative epochs [1, 10, 100, 1000]" in row["note"]


def test_robust_gap_inside_the_margin_with_a_seed_spread_is_inconclusive():
    """Mean |acc_own − acc_ntk| ~ 0.03 < margin 0.05, but the three seeds give
    0, 0.06 and 0.03: the upper bound at df ~2 (c ~ 4.5) is above the margin."""
    rng = np.random.default_rng(21)
    own, _, rnd = _accuracies(rng, 0.2, 0.2, 0.9)
    extra = rng.random(own.shape) < np.array([0.0, 0.075, 0.0375])[None, :, None, None]
    ntk = own | extra
    row = _robust(own, ntk, rnd)
    assert row["measured"] < 0.05 and "margin" in row["statistic"]
    assert _verdict(row) == "inconclusive", row["note"]
    assert "upper bound below the margin" in row["note"]


def test_robust_with_uninformative_attacks_is_inconclusive():
    """The own attack does no more than random signs: agreement would be trivial."""
    rng = np.random.default_rng(8)
    own = rng.random((W, S, E, B)) < 0.8
    row = _robust(own, own.copy(), own.copy())
    assert _verdict(row) == "inconclusive"
    assert "no informative epoch" in row["note"]


def test_robust_fails_when_the_ntk_attack_does_not_transfer():
    """Own FGSM kills the nets, the NTK's examples act like random signs."""
    own, _, rnd = _accuracies(np.random.default_rng(9), 0.1, 0.0, 0.9)
    ntk = np.random.default_rng(10).random(own.shape) < 0.9
    assert _verdict(_robust(own, ntk, rnd)) == "fail"


def test_robust_random_like_ntk_attack_inside_the_margin_does_not_pass():
    """The own attack lowers accuracy only 0.04 below random signs (informative with
    many points) and the NTK attack is the random one: |own − ntk| < margin, but
    the NTK examples are no closer to the own ones than random signs are."""
    rng = np.random.default_rng(11)
    shape = (W, S, E, 4000)
    rnd = rng.random(shape) < 0.8
    own = rnd & (rng.random(shape) > 0.05)  # 0.8 -> 0.76
    cos = np.full(shape, 0.5)
    runs = _runs(cos, cos, own, rnd.copy(), rnd)
    assert informative_epochs(own[-1], rnd[-1]).all()
    row = robust_row(runs, 0.05, 200, 0)
    assert _verdict(row) != "pass"
    assert "random-sign control" in row["statistic"]


# ---------------------------------------------------------------- 5c


def _seed_cosines(rng, offsets):
    """Cosines (W, S, E, B): per-point values shared by all seeds plus an offset per
    seed (the initialisation effect) and a little point noise."""
    base = rng.uniform(0.6, 0.9, size=(1, 1, E, B))
    off = np.asarray(offsets)[None, :, None, None]
    return np.clip(base + off + 0.01 * rng.normal(size=(W, len(offsets), E, B)), -1, 1)


def test_seed_spread_passes_when_seeds_agree():
    cos = _seed_cosines(np.random.default_rng(12), [0.0, 0.002, -0.002])
    row = seed_row(_runs(cos, cos), 0.05, 300, 0)
    assert _verdict(row) == "pass"


def test_seed_spread_fails_when_seeds_disagree():
    """Eight seeds spread by 0.3 (6x the margin): the lower bound is above it."""
    offsets = 0.3 * np.array([0.0, 1, -1, 0.5, -0.5, 1.5, -1.5, 0.2])
    cos = _seed_cosines(np.random.default_rng(13), offsets)
    row = seed_row(_runs(cos, cos), 0.05, 300, 0)
    assert _verdict(row) == "fail"
    assert "but not fail" not in row["note"]


def test_seed_spread_of_three_seeds_cannot_fail_and_says_so():
    """With 3 seeds the std bounds σ only loosely (c = 4.5 at df 2, SE of a std
    ~ half of it): a spread 6x the margin is inconclusive, not a fail."""
    cos = _seed_cosines(np.random.default_rng(13), [0.0, 0.3, -0.3])
    row = seed_row(_runs(cos, cos), 0.05, 300, 0)
    assert _verdict(row) == "inconclusive"
    assert "but not fail" in row["note"] and "equivalence" in row["note"]


def test_seed_spread_inside_the_margin_with_a_wide_bound_is_inconclusive():
    """3 seeds, s̄ ~ 0.02 < margin 0.05, but s̄ + 4.5·s̄/2 > 0.05: the point
    estimate inside the margin does not pass (the old rule, bootstrap SE over
    test points at 2 SE, passed it)."""
    cos = _seed_cosines(np.random.default_rng(16), [0.0, 0.03, -0.01])
    row = seed_row(_runs(cos, cos), 0.05, 300, 0)
    assert row["measured"] < 0.05
    assert row["measured"] + core.critical_value(2) * row["effect_se"] > 0.05
    assert _verdict(row) == "inconclusive"
    w = int(np.argmax([np.mean(np.std(c.mean(-1), axis=0, ddof=1)) for c in cos]))

    def spread(idx):
        return np.mean(np.std(cos[w][:, :, idx].mean(axis=-1), axis=0, ddof=1))

    se_boot = core.bootstrap_se(spread, B, 300, 0)  # the old SE: test points only
    assert core.verdict(0.05 - row["measured"], se_boot) == "pass"


def test_seed_spread_inconclusive_names_the_cost_of_its_resolving_seeds():
    """With the seeds' training time recorded, the resolving number of seeds comes
    with its added CPU time and whether this machine affords it."""
    import dataclasses

    cos = _seed_cosines(np.random.default_rng(16), [0.0, 0.03, -0.01])
    runs = dataclasses.replace(_runs(cos, cos), seed_seconds=40.0)
    row = seed_row(runs, 0.05, 300, 0)
    assert _verdict(row) == "inconclusive"
    assert "to resolve: ~" in row["note"] and "job-s per seed" in row["note"]
    assert "affordable" in row["note"]


def test_seed_spread_std_and_its_se():
    cos = _seed_cosines(np.random.default_rng(14), [0.0, 0.01, 0.03])
    row = seed_row(_runs(cos, cos), 0.05, 300, 0)
    per_width = [
        np.mean(np.std(cos[w].mean(axis=-1), axis=0, ddof=1)) for w in range(W)
    ]
    assert row["measured"] == pytest.approx(max(per_width))  # the binding width
    w = int(np.argmax(per_width))

    def spread(idx):
        return np.mean(np.std(cos[w][:, :, idx].mean(axis=-1), axis=0, ddof=1))

    se_boot = core.bootstrap_se(spread, B, 300, 0)
    s_bar = per_width[w]
    assert row["effect_se"] == pytest.approx(math.sqrt(se_boot**2 + s_bar**2 / 4))
    df = core.combined_df(se_boot, s_bar / 2, S - 1)
    assert f"df {df:.4g}" in row["note"]


def test_seed_spread_needs_two_seeds():
    cos = _seed_cosines(np.random.default_rng(15), [0.0])
    row = seed_row(_runs(cos, cos), 0.05, 300, 0)
    assert _verdict(row) == "inconclusive" and "needs >= 2" in row["note"]


# ---------------------------------------------------------------- 5d


def test_width_passes_when_the_wider_net_agrees_better():
    rng = np.random.default_rng(16)
    cos = rng.uniform(0.5, 0.7, size=(W, S, E, B))
    cos[-1] += 0.2
    row = width_row(_runs(cos, cos), 300, 0)
    assert _verdict(row) == "pass"
    assert row["effect"] == pytest.approx(row["measured"] - row["null"])


@pytest.mark.parametrize(
    ("shift", "allowed"), [(0.0, {"inconclusive"}), (-0.2, {"fail"})]
)
def test_width_without_an_effect_does_not_pass(shift, allowed):
    """Both widths from the same distribution (no width effect), or the reverse."""
    rng = np.random.default_rng(17)
    cos = rng.uniform(0.4, 0.9, size=(W, S, E, B))
    cos[-1] = rng.uniform(0.4, 0.9, size=(S, E, B)) + shift
    row = width_row(_runs(cos, cos), 300, 0)
    assert _verdict(row) in allowed


def test_width_needs_two_widths():
    cos = np.full((1, S, E, B), 0.5)
    row = width_row(_runs(cos, cos, widths=(1000,)), 300, 0)
    assert _verdict(row) == "inconclusive" and "two" in row["note"]


# ---------------------------------------------------------------- table


def test_transfer_claims_table_has_four_rows_per_dataset_and_none_without_runs():
    ntk, net = _gradients(np.random.default_rng(18), shared=0.0, noise=0.1)
    runs = _runs(*_cosines(ntk, net))
    table = transfer_claims([runs], CRITERIA, 1000, seed=0)
    assert list(table.columns) == core.COLUMNS
    assert len(table) == 4 and set(table["finding"]) == {5}
    assert set(table["verdict"]) <= set(core.VERDICTS)
    empty = transfer_claims([], CRITERIA, 1000)
    assert list(empty.columns) == core.COLUMNS and len(empty) == 0


def test_cosine_with_a_seed_dominated_se_is_judged_at_t_and_resolved_by_seeds():
    """Per-seed effects 0.02, 0.10, 0.06 (mean 0.06, seed SE ~0.023 >> the test-point
    SE): 2.6 SE clears 2 but not the t value at df ~2 (4.5); more test points
    cannot shrink the initialisation's spread, so the row asks for seeds."""
    rng = np.random.default_rng(22)
    cos = np.clip(rng.uniform(0.6, 0.9, size=(W, S, E, B)), -1, 1)
    gap = np.array([0.02, 0.10, 0.06])[None, :, None, None]
    mm = cos - gap + 0.002 * rng.normal(size=cos.shape)
    row = cosine_row(_runs(cos, mm), 0.0, 100, 300, 0)
    assert 2 * row["effect_se"] < row["effect"] < 4 * row["effect_se"]
    assert _verdict(row) == "inconclusive", row["note"]
    assert "seeds (SE ∝ 1/√n; now 3)" in row["note"]
    assert "critical value 4." in row["note"]
