"""Tests of ntkadv.features.claims and .stats: each criterion passes where the
claim clearly holds (synthetic eigenfeatures whose top eigenvectors are aligned with
the labels) and does not pass where it is false (the "true" labels replaced by a
permutation, compared with further permutations: the negative control)."""

from __future__ import annotations

import numpy as np
import pytest

from ntkadv.claims import core
from ntkadv.claims.nulls import label_permutations
from ntkadv.features import claims, rescore, stats

N, M, K, P = 200, 80, 100, 16
BANDS = {"top": [0, 10], "tail": [50, 100]}


def synthetic_problem(seed: int, archs=("a", "b", "c")):
    """Label-free projections of K features of several "architectures".

    Feature i has label alignment s_i = exp(-i / 8): its eigenvector leans toward
    the training labels (w_i > 0) and p_i(x) toward the evaluation label; its
    toward-zero FGSM side moves p_i by δ_i, growing with i (top features robust).
    Features 15-39 are aligned (s = 0.6) but move by 3 (useful, non-robust). The
    architectures share this label structure; the rest of their eigenvectors and
    projections is independent noise (so only the labels make them agree).
    """
    rng = np.random.default_rng(seed)
    lab_train = rng.permutation(np.arange(N) % 2)
    lab_eval = rng.permutation(np.arange(M) % 2)
    y_train = (2.0 * lab_train - 1)[:, None]
    y_eval = (2.0 * lab_eval - 1)[:, None]
    i = np.arange(K)
    s = np.exp(-i / 8.0)
    delta = 0.1 + 1.5 * i / K
    useful_nonrobust = (i >= 15) & (i < 40)
    s[useful_nonrobust], delta[useful_nonrobust] = 0.6, 3.0
    out = {}
    for a in archs:
        v = 0.5 * s * y_train / np.sqrt(N) + rng.normal(size=(N, K)) / np.sqrt(N)
        p = s[:, None] * y_eval[:, 0] + (1 - s[:, None]) * rng.normal(size=(K, M))
        step = delta[:, None] * (1 + 0.2 * rng.normal(size=(K, M)))
        p_t = p - np.sign(p) * np.abs(step)
        lf = rescore.LabelFree(
            indices=i,
            eigvals=1.0 / (1.0 + i),
            eigvecs=v,
            p_clean=p,
            p_plus=np.where(p < 0, p_t, np.nan),
            p_minus=np.where(p >= 0, p_t, np.nan),
        )
        out[a] = lf
    return out, y_train, y_eval, lab_eval


def correctness(problem, y_true, seed=5, sweep=0, flip=()):
    """Every architecture rescored under y_true and P permutations; with `sweep`
    also under that many permutations (finding 1's orientation test); the
    architectures in `flip` get −y_true (their features oriented the wrong way)."""
    lfs, _, y_eval, lab_eval = problem
    perms = label_permutations(N, P, seed)
    many = label_permutations(N, sweep, seed)
    out = []
    for a, lf in lfs.items():
        y = -y_true if a in flip else y_true
        ys = np.concatenate([y[None], rescore.permuted_targets(y, perms)])
        r = rescore.rescore(lf, ys, y_eval, "binary")
        orient = None
        if sweep:
            orient = stats.OrientationSweep(
                *rescore.robust_sweep(lf, y, y_eval, "binary", many)
            )
        out.append(
            stats.ArchCorrectness(
                a, lf.indices, r.correct_clean, r.correct_robust, lab_eval, orient
            )
        )
    return out


def _reading(row) -> str:
    for r in ("paper's reading", "chance-corrected reading"):
        if r in row["claim"]:
            return f"{row['finding']} {r.split()[0]}"
    return str(row["finding"])


def rows_for(archs, overlap=1.0):
    rows = claims.spectrum_claims(
        "toy", archs, top_k=K, nonrobust_max=0.05, bands=BANDS, figure="f.png"
    )
    names = [a.arch for a in archs]
    overlaps = {(a, b): overlap for i, a in enumerate(names) for b in names[i + 1 :]}
    rows += claims.consistency_claims(
        "toy", archs, overlaps=overlaps, n=N, top=10, top_k=K, figure="g"
    )
    return {_reading(r): r for r in rows}


PAPER_1, CHANCE_1 = "1 paper's", "1 chance-corrected"
PAPER_3, CHANCE_3 = "3 paper's", "3 chance-corrected"
COUNT_2 = "2 chance-corrected"


def test_findings_1_2_3_pass_when_the_top_features_carry_the_labels():
    problem = synthetic_problem(0)
    rows = rows_for(correctness(problem, problem[1]))
    assert set(rows) == {PAPER_1, CHANCE_1, COUNT_2, PAPER_3, CHANCE_3}
    for row in rows.values():
        assert row["verdict"] == "pass", row
        assert set(core.COLUMNS) == set(row)
        assert row["effect"] >= 2 * row["effect_se"] > 0
    assert "n = 80 evaluation points" in rows[PAPER_1]["note"]
    assert rows[PAPER_1]["statistic"].startswith("paper's reading")
    assert rows[CHANCE_1]["statistic"].startswith("chance-corrected reading")


def uninformative_labels(y: np.ndarray, seed: int) -> np.ndarray:
    """A permutation of the labels with zero correlation with them: half of each
    class's positions get each label (the claim is false for these labels)."""
    rng = np.random.default_rng(seed)
    fake = y.copy()
    for c in (-1.0, 1.0):
        pos = rng.permutation(np.flatnonzero(y[:, 0] == c))
        fake[pos[: pos.size // 2], 0] = -c
    assert fake.sum() == y.sum() and float(fake[:, 0] @ y[:, 0]) == 0.0
    return fake


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_label_driven_readings_do_not_pass_on_permuted_labels(seed):
    """The "true" labels are a permutation; the null uses further permutations.
    The chance-corrected readings (and finding 2) must not pass; the paper's
    readings have their own controls (tests below)."""
    problem = synthetic_problem(seed)
    rows = rows_for(correctness(problem, uninformative_labels(problem[1], seed)))
    for f in (CHANCE_1, COUNT_2, CHANCE_3):
        assert rows[f]["verdict"] != "pass", rows[f]


def test_permutation_spread_is_the_part_of_the_se_points_do_not_shrink():
    """The features' label-permutation rows carry sd_perm·√(1 + 1/P) as
    `se_fixed` (the spread over labellings: one orientation draw per feature), so
    an inconclusive row's resolving size keeps it; the verdict is unchanged."""
    problem = synthetic_problem(0)
    for y in (problem[1], uninformative_labels(problem[1], 0)):
        archs = correctness(problem, y)
        units = {
            a.arch: (
                lambda w, a=a: stats.band_gap(
                    stats._acc(stats._float(a.robust), w),
                    a.index,
                    BANDS["top"],
                    BANDS["tail"],
                ),
                a.m,
            )
            for a in archs
        }
        pooled = stats.pool(units)
        ev = claims._evidence("T", pooled, "per architecture", M)
        assert ev.se_fixed == pytest.approx(pooled.sd_perm * np.sqrt(1 + 1 / P))
        assert 0 < ev.se_fixed <= ev.se
        assert ev.verdict == core.verdict(ev.effect, ev.se, df=ev.df)


def _reorder(a: stats.ArchCorrectness, order: np.ndarray) -> stats.ArchCorrectness:
    """Feature k gets the scores of feature order[k] (eigen-indices unchanged)."""
    return stats.ArchCorrectness(
        a.arch, a.index, a.clean[:, order], a.robust[:, order], a.labels
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_finding_1_paper_reading_needs_the_index_order(seed):
    """Index-ordered robustness passes; the same scores in a shuffled index order
    do not; in reversed order (robustness rising with the index) it fails."""

    def paper_row(archs):
        rows = claims.spectrum_claims(
            "toy", archs, top_k=K, nonrobust_max=0.05, bands=BANDS, figure="f.png"
        )
        return {_reading(r): r for r in rows}[PAPER_1]

    problem = synthetic_problem(seed)
    archs = correctness(problem, problem[1])
    assert paper_row(archs)["verdict"] == "pass"
    rng = np.random.default_rng(seed)
    shuffled = [_reorder(a, rng.permutation(K)) for a in archs]
    assert paper_row(shuffled)["verdict"] != "pass"
    reversed_ = [_reorder(a, np.arange(K)[::-1]) for a in archs]
    assert paper_row(reversed_)["verdict"] == "fail"


def test_index_order_stats_against_scipy():
    from scipy import stats as sps

    rng = np.random.default_rng(0)
    rob = rng.random(30)
    idx = np.arange(30)
    sh = np.stack([rng.permutation(30) for _ in range(5)])
    rho, gap = claims.index_order_stats(rob, idx, [0, 5], [20, 30], sh)
    assert rho[0] == pytest.approx(-sps.spearmanr(idx, rob).statistic)
    assert rho[3] == pytest.approx(-sps.spearmanr(idx, rob[sh[2]]).statistic)
    assert gap[1] == pytest.approx(rob[sh[0]][:5].mean() - rob[sh[0]][20:].mean())


def test_finding_3_identical_architectures_pass_the_paper_reading():
    """Perfect consistency passes the paper's reading; the chance-corrected
    reading has nothing to add (0 +- 0, inconclusive by construction)."""
    problem = synthetic_problem(0)
    a = correctness(problem, problem[1], seed=5)[0]
    twins = [a, stats.ArchCorrectness("twin", a.index, a.clean, a.robust, a.labels)]
    rows = rows_for(twins, overlap=1.0)
    assert rows[PAPER_3]["verdict"] == "pass", rows[PAPER_3]
    assert rows[CHANCE_3]["verdict"] == "inconclusive"
    assert rows[CHANCE_3]["effect"] == 0 and rows[CHANCE_3]["effect_se"] == 0


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_finding_3_paper_reading_on_kernels_with_the_same_spectrum(seed):
    """Kernels that share their eigenvectors up to a small perturbation pass;
    independent random kernels with the same spectrum (eigenvectors Haar) do not."""
    from ntkadv.features.consistency import haar_frames, subspace_overlap

    n, r = 120, 10
    lam = 1.0 / (1.0 + np.arange(n)) ** 1.5
    problem = synthetic_problem(seed)
    archs = correctness(problem, problem[1])
    names = [a.arch for a in archs]
    rng = np.random.default_rng(seed)
    q = haar_frames(n, n, 1, [seed, 99])[0]

    def top_of(kernel_q, noise=0.0):
        e = rng.normal(size=(n, n)) * noise
        w, v = np.linalg.eigh((kernel_q * lam) @ kernel_q.T + (e + e.T) / 2)
        return v[:, np.argsort(w)[::-1][:r]]

    def paper_row(vecs):
        ov = {
            (x, y): subspace_overlap(vecs[x], vecs[y])
            for i, x in enumerate(names)
            for y in names[i + 1 :]
        }
        rows = claims.consistency_claims(
            "toy", archs, overlaps=ov, n=n, top=r, top_k=K, figure="g", seed=seed
        )
        return {_reading(row): row for row in rows}[PAPER_3]

    similar = {x: top_of(q, 1e-4) for x in names}
    assert paper_row(similar)["verdict"] == "pass"
    independent = {
        x: top_of(haar_frames(n, n, 1, [seed, 7, i])[0]) for i, x in enumerate(names)
    }
    row = paper_row(independent)
    assert row["verdict"] != "pass", row
    assert row["null"] == pytest.approx(r / n, rel=0.1)


def test_finding_1_needs_the_tail_band():
    problem = synthetic_problem(0)
    archs = correctness(problem, problem[1])
    few = [
        stats.ArchCorrectness(
            a.arch, a.index[:30], a.clean[:, :30], a.robust[:, :30], a.labels
        )
        for a in archs
    ]
    rows = claims.spectrum_claims(
        "toy", few, top_k=30, nonrobust_max=0.05, bands=BANDS, figure="f.png"
    )
    for row in rows[:2]:
        assert row["finding"] == 1 and row["verdict"] == "inconclusive"
        assert "features.top_k = 30" in row["note"]


def test_pool_matches_the_convention():
    """effect = mean over units; SE² = mean(SE_boot)² + sd_perm²(1 + 1/P)."""
    rng = np.random.default_rng(0)
    x = {u: rng.random((1 + P, 20)) < 0.5 for u in "ab"}
    units = {u: (lambda w, x=x[u]: stats._acc(x, w), 20) for u in x}
    pooled = stats.pool(units, reps=200)
    true = np.mean([x[u][0].mean() for u in x])
    perm = np.mean([x[u][1:].mean(axis=1) for u in x], axis=0)
    assert pooled.measured == pytest.approx(true)
    assert pooled.null == pytest.approx(perm.mean())
    assert pooled.sd_perm == pytest.approx(perm.std(ddof=1))
    boots = []
    for u in x:
        boots.append(
            core.bootstrap_se(
                lambda idx, x=x[u]: x[0, idx].mean() - x[1:, idx].mean(axis=1).mean(),
                20,
                200,
                stats.BOOT_SEED,
            )
        )
    se = np.sqrt(np.mean(boots) ** 2 + perm.std(ddof=1) ** 2 * (1 + 1 / P))
    assert pooled.se == pytest.approx(se)


def test_useful_threshold_is_significance_above_the_majority_rate():
    assert stats.useful_threshold(0.5, 100) == pytest.approx(0.6)
    counts = stats.useful_nonrobust_count(
        np.array([0.55, 0.61, 0.9, 0.9]),
        np.array([0.0, 0.0, 0.04, 0.3]),
        0.5,
        100,
        0.05,
    )
    assert counts == 2


def _topr(seed, true_peak, task="binary", m=60, r_count=6):
    """Own-FGSM correctness (L, R, m): a peak at r = 2 for the true labels if
    `true_peak`, permutations without label information."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(m) % (2 if task == "binary" else 10))
    chance = 0.5 if task == "binary" else 0.1
    clean = rng.random((1 + 4, r_count, m)) < chance
    robust = clean & (rng.random((1 + 4, r_count, m)) < 0.6)
    if true_peak:
        rise = np.array([0.6, 0.8, 0.9, 0.95, 0.95, 0.95])
        rob = np.array([0.3, 0.5, 0.85, 0.6, 0.3, 0.1])
        if task != "binary":
            rise = np.array([0.2, 0.35, 0.5, 0.7, 0.9, 0.95])
            rob = np.array([0.15, 0.3, 0.4, 0.3, 0.1, 0.0])
        clean[0] = rng.random((r_count, m)) < rise[:, None]
        keep = rng.random((r_count, m)) < (rob / rise)[:, None]
        robust[0] = clean[0] & keep
    return np.array([1, 2, 5, 10, 20, 50]), clean, robust, labels


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_finding_7_passes_with_a_sweet_spot_and_not_on_permuted_labels(task):
    r, clean, robust, labels = _topr(0, True, task)
    row = claims.topr_claim("toy", task, r, clean, robust, labels, "t.png")
    assert row["verdict"] == "pass", row
    for seed in range(4):
        r, clean, robust, labels = _topr(seed, False, task)
        row = claims.topr_claim("toy", task, r, clean, robust, labels, "t.png")
        assert row["verdict"] != "pass", row


def test_finding_7_binary_needs_a_peak_above_the_constant_predictor():
    """A "sweet spot" below the majority rate is no sweet spot, however it compares
    with the permutations."""
    r, clean, robust, labels = _topr(0, True)
    robust = robust.copy()
    robust[0] &= np.random.default_rng(1).random(robust[0].shape) < 0.5
    row = claims.topr_claim("toy", "binary", r, clean, robust, labels, "t.png")
    assert row["verdict"] != "pass"


def test_proposition1_row():
    good = {"cifar2/fc1": {"grad_rel_err": 1e-13, "sum_rel_err": 2e-14}}
    row = claims.proposition1_claim("cifar2", good, "g.png")
    assert row["verdict"] == "pass" and row["finding"] == 14
    bad = {"cifar2/fc1": {"grad_rel_err": 1e-3, "sum_rel_err": 2e-14}}
    assert claims.proposition1_claim("cifar2", bad, "g.png")["verdict"] == "fail"
    assert claims.proposition1_claim("mnist", {}, "g.png")["verdict"] == "inconclusive"


def test_pool_carries_the_permutation_df_and_each_units_own_evidence():
    """The pooled SE has the Satterthwaite df of SE_boot² + sd_perm²(1 + 1/P)
    (P − 1 = 3 for the 4 permutations of top-r); every unit has its own Pooled
    (its own sd_perm and df) for the members of a pooled row."""
    rng = np.random.default_rng(1)
    p = 4
    x = {u: rng.random((1 + p, 30)) < 0.5 for u in "ab"}
    units = {u: (lambda w, x=x[u]: stats._acc(x, w), 30) for u in x}
    pooled = stats.pool(units, reps=200)
    sd = pooled.sd_perm * np.sqrt(1 + 1 / p)
    assert pooled.df == pytest.approx(core.combined_df(pooled.se_boot, sd, p - 1))
    assert set(pooled.units) == {"a", "b"}
    for u, own in pooled.units.items():
        alone = stats.pool({u: units[u]}, reps=200)
        assert own.se == pytest.approx(alone.se) and own.df == pytest.approx(alone.df)
        assert own.effect == pytest.approx(x[u][0].mean() - x[u][1:].mean())
    ev = claims._evidence("s", pooled, "w", 30)
    assert ev.df == pooled.df and ev.replicates == p and ev.crit > 2


def test_pooled_feature_rows_list_every_member():
    problem = synthetic_problem(0)
    rows = rows_for(correctness(problem, problem[1]))
    for f, names in (
        (CHANCE_1, "abc"),
        (COUNT_2, "abc"),
        (CHANCE_3, ("a-b", "a-c", "b-c")),
    ):
        assert "members:" in rows[f]["note"], rows[f]["note"]
        for n in names:
            assert f"{n}: " in rows[f]["note"]


def _shift_tail(a: stats.ArchCorrectness, start: int, offset: int):
    """The same scores with eigen-indices >= start moved up by offset (features
    scored far beyond top_k, as features.spread adds)."""
    index = np.where(a.index >= start, a.index + offset, a.index)
    return stats.ArchCorrectness(a.arch, index, a.clean, a.robust, a.labels)


@pytest.mark.parametrize("seed", [0, 1])
def test_finding_2_counts_useful_nonrobust_features_beyond_top_k(seed):
    """The useful non-robust features (15-39 of the synthetic problem) moved to
    eigen-indices >= 1000, far beyond top_k = 15: finding 2 still finds them (and
    says where); on uninformative labels it does not pass."""
    problem = synthetic_problem(seed)

    def f2(y):
        archs = [_shift_tail(a, 15, 985) for a in correctness(problem, y)]
        rows = claims.spectrum_claims(
            "toy", archs, top_k=15, nonrobust_max=0.05, bands=BANDS, figure="f"
        )
        return [r for r in rows if r["finding"] == 2][0]

    row = f2(problem[1])
    assert row["verdict"] == "pass", row
    assert row["measured"] >= 20  # most of the 25 planted features
    assert "at indices 1000-" in row["note"]
    assert f2(uninformative_labels(problem[1], seed))["verdict"] != "pass"


def test_finding_7_multiclass_level_is_halfway_to_the_full_kernel():
    """(b)'s level h sits halfway from the majority rate to the full kernel's clean
    accuracy, not at a fixed 0.5."""
    clean = np.array([0.2, 0.6, 0.9])
    assert stats.nontrivial_level(clean, 0.1) == pytest.approx(0.5)
    assert stats.topr_tradeoff(clean, np.array([0.1, 0.3, 0.0]), 0.1) == (
        pytest.approx(0.2)
    )


def test_finding_7_multiclass_fails_when_an_r_is_accurate_and_robust():
    """A top-r kernel that keeps its clean accuracy under attack (robust = clean,
    both above h) is the opposite of the claim: part (b) and the row fail."""
    r, clean, robust, labels = _topr(0, True, "multiclass")
    robust = robust.copy()
    robust[0, 3] = clean[0, 3]  # r = 10: clean ~0.7 > h ~0.53, robust the same
    row = claims.topr_claim("toy", "multiclass", r, clean, robust, labels, "t.png")
    assert row["verdict"] == "fail", row
    assert "h = " in row["note"]


# ---------------------------------------------------------------- extra ε


def _extra_rows(archs):
    rows = claims.spectrum_claims(
        "toy",
        archs,
        top_k=K,
        nonrobust_max=0.05,
        bands=BANDS,
        figure="f.png",
        at_eps=(0.075, 0.3),
    )
    return {_reading(r): r for r in rows}


def test_extra_eps_spectrum_rows_pass_and_fail_like_the_paper_eps_rows():
    """At an extra ε only the chance-corrected rows (finding 1, finding 2), tagged
    with the ε, same numbers as the untagged rows on the same correctness: they
    pass where the top features carry the labels and not on permuted labels."""
    problem = synthetic_problem(0)
    archs = correctness(problem, problem[1])
    rows, plain = _extra_rows(archs), rows_for(archs)
    assert set(rows) == {CHANCE_1, COUNT_2}
    for name, row in rows.items():
        assert row["verdict"] == "pass", row
        assert row["claim"].endswith(
            "[at ε = 0.075, off the paper-ε floor; the paper's ε is 0.3]"
        )
        assert row["claim"].startswith(plain[name]["claim"])
        assert (row["effect"], row["effect_se"]) == (
            plain[name]["effect"],
            plain[name]["effect_se"],
        )
        assert row["note"].startswith(core.EXTRA_EPS_NOTE)
    for seed in range(3):
        problem = synthetic_problem(seed)
        fake = correctness(problem, uninformative_labels(problem[1], seed))
        for row in _extra_rows(fake).values():
            assert row["verdict"] != "pass", row


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_extra_eps_topr_row_passes_and_fails_like_the_paper_eps_row(task):
    r, clean, robust, labels = _topr(0, True, task)
    plain = claims.topr_claim("toy", task, r, clean, robust, labels, "t.png")
    row = claims.topr_claim(
        "toy", task, r, clean, robust, labels, "t.png", at_eps=(0.075, 0.3)
    )
    assert row["verdict"] == "pass" and row["claim"].startswith(plain["claim"])
    assert "at ε = 0.075" in row["claim"] and "at ε" not in plain["claim"]
    assert (row["effect"], row["effect_se"]) == (plain["effect"], plain["effect_se"])
    for seed in range(3):
        r, clean, robust, labels = _topr(seed, False, task)
        row = claims.topr_claim(
            "toy", task, r, clean, robust, labels, "t.png", at_eps=(0.075, 0.3)
        )
        assert row["verdict"] != "pass", row


# ------------------------------------------------- finding 1, orientation test

SWEEP = 1000


def chance_row(archs):
    rows = claims.spectrum_claims(
        "toy", archs, top_k=K, nonrobust_max=0.05, bands=BANDS, figure="f.png"
    )
    return {_reading(r): r for r in rows}[CHANCE_1]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_finding_1_orientation_test_passes_only_when_the_labels_orient(seed):
    """True labels that orient the top features (synthetic alignment) pass the
    sign test with its 1,000-permutation null; uninformative labels (a
    permutation uncorrelated with them, the claim false) do not."""
    problem = synthetic_problem(seed)
    row = chance_row(correctness(problem, problem[1], sweep=SWEEP))
    assert row["verdict"] == "pass", row
    assert "P = 1000 training-label permutations" in row["note"]
    assert "exact permutation p = 0.000999" in row["note"]
    fake = uninformative_labels(problem[1], seed)
    row = chance_row(correctness(problem, fake, sweep=SWEEP))
    assert row["verdict"] != "pass", row


def test_finding_1_orientation_test_fails_on_a_member_oriented_the_wrong_way():
    """A kernel whose labels orient its features the wrong way (−Y) fails at its
    own SE: the pooled row fails too and names it, whatever the pooled effect."""
    problem = synthetic_problem(0)
    row = chance_row(correctness(problem, problem[1], sweep=SWEEP, flip=("c",)))
    assert row["verdict"] == "fail", row
    assert "[member c]" in row["statistic"]
    assert "c: -" in row["note"] and "members:" in row["note"]


def test_finding_1_orientation_test_se_carries_df_and_the_t_critical_value():
    """The SE holds a spread over P = 1,000 permutations: it carries its
    Satterthwaite df and the row is judged at the Student-t critical value."""
    import re

    problem = synthetic_problem(0)
    row = chance_row(correctness(problem, problem[1], sweep=SWEEP))
    df = float(re.search(r"Satterthwaite df ([0-9.e+]+)", row["note"]).group(1))
    crit = float(re.search(r"critical value ([0-9.]+) SE \(Student t", row["note"])[1])
    assert 100 < df and crit == pytest.approx(core.critical_value(df), abs=5e-4)
    assert row["effect"] / row["effect_se"] >= crit


def test_finding_1_uninformative_labels_pass_at_most_at_the_test_size():
    """The negative control by construction: over 40 uninformative labellings
    (each against its own 1,000 permutations) the row passes at about the size
    of a one-sided test at c ≈ 2 SE (≤ 4 of 40; ~1 expected)."""
    problem = synthetic_problem(0)
    lfs, y, y_eval, lab = problem
    lf = lfs["a"]
    passes = 0
    for s in range(40):
        fake = uninformative_labels(y, 100 + s)
        many = label_permutations(N, SWEEP, 100 + s)
        sw = stats.OrientationSweep(
            *rescore.robust_sweep(lf, fake, y_eval, "binary", many)
        )
        r = rescore.rescore(lf, fake, y_eval, "binary")
        a = stats.ArchCorrectness(
            "a", lf.indices, r.correct_clean, r.correct_robust, lab, sw
        )
        passes += chance_row([a])["verdict"] == "pass"
    assert passes <= 4


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_robust_sweep_matches_rescore(task):
    """`robust_sweep` (chunked) equals rescoring every label set at once: counts
    per point, robustness per feature, and −Y for the flipped orientation."""
    rng = np.random.default_rng(3)
    n, k, m, kk = 30, 7, 11, (1 if task == "binary" else 3)
    lab = rng.integers(0, max(kk, 2), n)
    y = (2.0 * lab - 1)[:, None] if kk == 1 else np.eye(kk)[lab]
    ye = (
        (2.0 * (np.arange(m) % 2) - 1)[:, None]
        if kk == 1
        else np.eye(kk)[np.arange(m) % kk]
    )
    p = rng.normal(size=(k, m))
    lf = rescore.LabelFree(
        indices=np.arange(k),
        eigvals=1.0 + np.arange(k)[::-1],
        eigvecs=rng.normal(size=(n, k)),
        p_clean=p,
        p_plus=p + 0.3 * rng.normal(size=(k, m)),
        p_minus=p - 0.3 * rng.normal(size=(k, m)),
    )
    perms = label_permutations(n, 9, 0)
    counts, robustness, flipped = rescore.robust_sweep(lf, y, ye, task, perms, chunk=4)
    ys = np.concatenate([y[None], rescore.permuted_targets(y, perms)])
    ref = rescore.rescore(lf, ys, ye, task).correct_robust
    np.testing.assert_array_equal(counts, ref.sum(axis=1))
    np.testing.assert_allclose(robustness, ref.mean(axis=-1))
    np.testing.assert_array_equal(
        flipped, rescore.rescore(lf, -y, ye, task).correct_robust[0]
    )


def test_orientation_gain_is_the_binary_decomposition():
    """Binary: every labelling's mean robust accuracy is the orientation-free
    mean plus mean_i g_i s_i / 2 (labels enter only through sign(v_iᵀY)); G is 1
    when every feature is oriented its robust way and −1 when none is."""
    problem = synthetic_problem(0)
    lfs, y, y_eval, _ = problem
    lf = lfs["a"]
    perms = label_permutations(N, 50, 0)
    counts, robustness, flipped = rescore.robust_sweep(lf, y, y_eval, "binary", perms)
    a_plus, a_minus = robustness[0], flipped.mean(axis=-1)
    g_share, g = claims.orientation_gain(a_plus, a_minus)
    assert 0.5 < g_share <= 1
    base = (a_plus + a_minus) / 2
    w = rescore.weights_for(lf, rescore.permuted_targets(y, perms))[..., 0]
    s = (
        np.sign(w)
        * np.sign(rescore.weights_for(lf, y)[:, 0])
        * np.sign(a_plus - a_minus)
    )
    np.testing.assert_allclose(
        robustness[1:].mean(-1), base.mean() + (g * s).mean(-1) / 2, atol=1e-12
    )
    assert claims.orientation_gain(a_minus, a_plus)[0] == pytest.approx(-g_share)
    best = np.maximum(a_plus, a_minus)
    assert claims.orientation_gain(best, np.minimum(a_plus, a_minus))[0] == 1.0
    assert claims.exact_p(np.array([1.0, 0.5, 2.0, 0.9])) == 0.5
