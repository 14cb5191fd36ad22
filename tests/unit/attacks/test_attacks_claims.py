"""Tests of ntkadv.attacks.claims and .pointwise: every criterion passes clear
synthetic positives and does not pass data where the claim is false (the true labels
exchangeable with the permutations, a near-constant early predictor, a real
permuted-label machine)."""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ntkadv.attacks import claims as ac
from ntkadv.attacks import pointwise as apw
from ntkadv.claims import core

TAUS = np.array([0.1, 10.0, 1e3, math.inf])
REPO = Path(__file__).resolve().parents[3]


def _pointwise(clean, attacked, labels, dataset="d", arch="a", extra=None):
    """Pointwise from clean / attacked correctness probabilities per (set, time).

    clean, attacked: (S, T) probabilities or (S, T, m) arrays; a point is drawn
    correct clean / attacked independently (attacked only if correct clean, so
    the robust accuracy is `attacked`).
    """
    rng = np.random.default_rng(zlib.crc32(f"{dataset}/{arch}".encode()))
    m = labels.size

    def draw(p):
        p = np.asarray(p, float)
        return p > 0.5 if p.ndim == 3 else rng.random(p.shape + (m,)) < p[..., None]

    c = draw(clean).astype(np.int8)
    a = (draw(attacked) & (c == 1)).astype(np.int8)
    correct = {"clean": c, "fgsm": a, "pgd": a.copy(), "random_sign": c.copy()}
    correct |= extra or {}
    return apw.Pointwise(dataset, arch, TAUS, labels, correct)


def _labels(m=200):
    return np.arange(m) % 2


def _verdicts(rows):
    return [r["verdict"] for r in rows]


# ---------------------------------------------------------------- finding 4


def test_finding4_passes_a_robust_early_predictor():
    s = 5
    clean = np.array([[0.85] * 4] + [[0.5] * 4] * (s - 1))
    robust = np.array([[0.7, 0.7, 0.4, 0.05]] + [[0.3, 0.3, 0.2, 0.1]] * (s - 1))
    pws = [_pointwise(clean, robust, _labels(), arch=a) for a in ("a", "b")]
    (row,) = ac.finding4_rows(pws, {"d": "fig.png"})
    assert row["verdict"] == "pass", row["note"]
    assert set(row) == set(core.COLUMNS) and row["figure"] == "fig.png"
    table = apw.early_vs_late(pws)
    assert (table["tau_early"] == "0.1").all()


@pytest.mark.parametrize("seed", range(12))
def test_finding4_does_not_pass_when_true_labels_are_a_permutation(seed):
    """True labels exchangeable with the permutations: every set drawn alike."""
    rng = np.random.default_rng(seed)
    clean = np.full((5, 4), 0.5) + rng.uniform(-0.05, 0.05, (1, 4))
    robust = np.tile([0.4, 0.3, 0.2, 0.05], (5, 1))
    pws = [_pointwise(clean, robust, _labels(60), arch=f"k{i}{seed}") for i in range(3)]
    assert _verdicts(ac.finding4_rows(pws, {})) != ["pass"]


def test_finding4_near_constant_early_predictor_is_not_evidence():
    """The failure mode of the old criterion: at small τ every machine (true or
    permuted) predicts the majority class, whatever the attack (robust accuracy =
    the class prior); at t = ∞ the machines are at chance and non-robust."""
    labels = (np.arange(90) % 3 == 0).astype(int)  # prior 2/3 for class 0
    m = labels.size
    const = (labels == 0).astype(np.int8)
    rng = np.random.default_rng(1)
    clean = np.empty((3, 4, m), np.int8)
    clean[:, :3] = const  # constant predictor: correct on the majority class
    clean[:, 3] = rng.random((3, m)) < 0.5
    attacked = clean.copy()
    attacked[:, 3] = 0
    pws = [_pointwise(clean, attacked, labels, arch=f"k{i}") for i in range(2)]
    assert apw.useful_times(pws[0]) == {}  # clean = majority rate: not useful
    (row,) = ac.finding4_rows(pws, {})
    assert row["verdict"] == "inconclusive"
    assert "no attacked kernel has a useful early τ" in row["note"]


def test_finding4_reads_permuted_machines_only_where_they_were_attacked():
    """Rule attack_ntk attacks the permuted machines only at τ_early and ∞
    (`suite.with_null_times`): the row is the same with every other null entry
    "not run" (−1), and fails loudly (not with null robust accuracy 0) when an
    entry it reads was not run."""
    s = 5
    clean = np.array([[0.85] * 4] + [[0.5] * 4] * (s - 1))
    robust = np.array([[0.7, 0.7, 0.4, 0.05]] + [[0.3, 0.3, 0.2, 0.1]] * (s - 1))
    pws = [_pointwise(clean, robust, _labels(), arch=a) for a in ("a", "b")]
    (full,) = ac.finding4_rows(pws, {})
    for pw in pws:
        for attack in ("fgsm", "pgd"):
            pw.correct[attack][1:, 1:3] = -1  # τ_early is 0.1 (index 0) and ∞
    (sparse,) = ac.finding4_rows(pws, {})
    assert sparse == full
    for pw in pws:
        pw.correct["pgd"][2, 0] = -1
    with pytest.raises(ValueError, match="not attacked by pgd at τ \\[0.1\\]"):
        ac.finding4_rows(pws, {})


# ---------------------------------------------------------------- finding 6


def _f6(clean_true, clean_null, rs, fgsm, pgd, m=200, arch="fc1"):
    labels = _labels(m)
    clean = np.array([[clean_true] * 4] + [[clean_null] * 4] * 4)
    pw = _pointwise(clean, np.zeros((5, 4)), labels, dataset="cifar2", arch=arch)
    rng = np.random.default_rng(7)
    c = pw.correct["clean"]
    for name, p in (("random_sign", rs), ("fgsm", fgsm), ("pgd", pgd)):
        pw.correct[name][...] = (rng.random(c.shape) < p / clean_true) & (c == 1)
    return pw


def test_finding6_passes_accurate_non_robust_kernel():
    pw = _f6(0.85, 0.5, 0.8, 0.02, 0.0)
    rows = ac.finding6_rows([pw], {"dataset": "cifar2", "arch": "fc1"}, 0.1, {})
    assert _verdicts(rows) == ["pass", "pass"], [r["note"] for r in rows]


@pytest.mark.parametrize(
    ("clean_true", "rs", "fgsm", "pgd"),
    [
        (0.5, 0.45, 0.0, 0.0),  # a permuted machine: not useful
        (0.85, 0.02, 0.02, 0.0),  # noise destroys it as well as the attack
        (0.85, 0.8, 0.5, 0.4),  # not near zero
    ],
)
def test_finding6_does_not_pass_when_a_part_is_false(clean_true, rs, fgsm, pgd):
    pw = _f6(clean_true, 0.5, rs, fgsm, pgd)
    rows = ac.finding6_rows([pw], {"dataset": "cifar2", "arch": "fc1"}, 0.1, {})
    assert "pass" not in _verdicts(rows)


@pytest.mark.parametrize("seed", range(8))
def test_finding6_does_not_pass_when_true_labels_are_a_permutation(seed):
    rng = np.random.default_rng(seed)
    labels = _labels(40)
    clean = np.full((3, 4), 0.5)
    pws = []
    for i in range(3):
        pw = _pointwise(clean, np.zeros((3, 4)), labels, "cifar2", f"k{i}{seed}")
        c = pw.correct["clean"]
        pw.correct["random_sign"][...] = (rng.random(c.shape) < 0.9) & (c == 1)
        pws.append(pw)
    nb = {"dataset": "cifar2", "arch": pws[0].arch}
    assert "pass" not in _verdicts(ac.finding6_rows(pws, nb, 0.1, {}))


def test_finding6_notebook_none_and_missing_kernel():
    pw = _f6(0.85, 0.5, 0.8, 0.02, 0.0)
    assert len(ac.finding6_rows([pw], None, 0.1, {})) == 1
    rows = ac.finding6_rows([pw], {"dataset": "cifar2", "arch": "fc9"}, 0.1, {})
    assert rows[0]["verdict"] == "inconclusive" and "not run" in rows[0]["note"]


# ---------------------------------------------------------------- pooling / SE


def test_pooled_evidence_matches_the_formula():
    rng = np.random.default_rng(0)
    meas = [rng.random(30) < 0.7, rng.random(40) < 0.6]
    null = [rng.random((3, 30)) < 0.5, rng.random((3, 40)) < 0.4]
    ev = ac.pooled_evidence("s", meas, null, seed=5)
    effects = [a.mean() - b.mean() for a, b in zip(meas, null, strict=True)]

    def diff(a, b):
        a, b = a.astype(float), b.astype(float)
        return lambda i: a[i].mean() - b[:, i].mean()

    ses = [
        core.bootstrap_se(diff(a, b), a.size, ac.BOOT_REPS, 5 + k)
        for k, (a, b) in enumerate(zip(meas, null, strict=True))
    ]
    per_perm = np.mean([b.mean(axis=1) for b in null], axis=0)
    sd = np.std(per_perm, ddof=1)
    assert ev.effect == pytest.approx(np.mean(effects))
    assert ev.se == pytest.approx(math.sqrt(np.mean(ses) ** 2 + sd**2 * (4 / 3)))
    assert ev.n == 30
    th = ac.pooled_evidence("t", meas, None, threshold=0.9)
    assert th.effect == pytest.approx(0.9 - np.mean([a.mean() for a in meas]))
    assert th.null is None


# ---------------------------------------------------------------- finding 15


def test_finding15_identity_rows():
    checks = pd.DataFrame(
        {
            "dataset": ["cifar2", "cifar2", "mnist"],
            "arch": ["fc1", "conv1", "fc1"],
            "tau": [math.inf, 10.0, math.inf],
            "grad_f_rel_err": [1e-8, 1e-7, 3e-3],
            "loss_grad_rel_err": [1e-8, 2e-7, 1e-8],
            "sign_agreement": [1.0, 1.0, 0.99],
            "n_points": [4, 4, 4],
        }
    )
    rows = ac.finding15_rows(checks, {})
    assert [(r["dataset"], r["verdict"]) for r in rows] == [
        ("cifar2", "pass"),
        ("cifar2", "pass"),
        ("mnist", "fail"),
        ("mnist", "fail"),
    ]
    assert ac.finding15_rows(checks[:0], {})[0]["verdict"] == "inconclusive"


def test_attack_claims_columns_and_pointwise_roundtrip(tmp_path):
    from ntkadv import h5io

    pw = _f6(0.85, 0.5, 0.8, 0.02, 0.0)
    path = tmp_path / "pointwise.h5"
    names = [a for a in pw.correct if a != "clean"] + ["clean"]
    h5io.write(
        path,
        apw.pointwise_arrays(pw.taus, pw.labels, pw.correct),
        {"dataset": "cifar2", "arch": "fc1", "attacks": names},
    )
    back = apw.read_pointwise(str(path))
    for a in pw.correct:
        np.testing.assert_array_equal(back.correct[a], pw.correct[a])
    table = ac.attack_claims(
        [back], pd.DataFrame(), {"dataset": "cifar2", "arch": "fc1"}, 0.1
    )
    assert list(table.columns) == core.COLUMNS
    assert set(table["finding"]) == {4, 6, 15}


# ---------------------------------------------------------------- real data


def _real_cifar2(n_train=80, n_eval=40):
    from ntkadv import data

    files = data.locate_raw("cifar10", [str(REPO.parent / "shared" / "data")])
    if any(v is None for v in files.values()):
        pytest.skip("CIFAR-10 not in ../shared/data")
    train, test = data.load_raw("cifar10", {Path(p).name: p for p in files.values()})
    return data.make_subset(train, test, [0, 1], n_train, n_eval, "first", 0)


@pytest.mark.parametrize("permuted", [True, False])
def test_real_fc1_kernel_permuted_labels_pass_neither_finding(permuted):
    """A real FC1 NTK on 80 CIFAR-2 images, the training labels permuted (the
    negative-control config): findings 4 and 6 must not pass; with the true
    labels the rows are built (no verdict asserted at this size)."""
    from ntkadv.attacks.task import AttackSettings, attack_kernel_machine
    from ntkadv.claims import nulls
    from ntkadv.config import settings_from
    from ntkadv.kernels.analytic import kernel_fn_from_spec
    from ntkadv.kernels.blocked import ntk_gram_blocked
    from ntkadv.kernels.jacobians import input_jacobian_fn
    from ntkadv.spectra.eigh import eigendecompose

    arr = _real_cifar2()
    x_train, x_test = arr["x_train"].astype(float), arr["x_test"].astype(float)
    y_train = arr["y_train"].astype(float)
    if permuted:
        y_train = y_train[nulls.data_permutation(len(y_train), 0)]
    spec = {"family": "fc", "depth": 1}
    kernel_fn = kernel_fn_from_spec(spec)
    spectrum = eigendecompose(ntk_gram_blocked(kernel_fn, x_train, None, 100))
    k_test = ntk_gram_blocked(kernel_fn, x_test, x_train, 100)
    jac = input_jacobian_fn(kernel_fn, "fc")(x_test, x_train, 100)
    data = {
        "x_train": x_train,
        "y_train": y_train,
        "x_test": x_test,
        "y_test": arr["y_test"].astype(float),
        "attrs": {"task": "binary"},
    }
    s = settings_from(
        AttackSettings,
        {
            "arch": spec,
            "eps": 8 / 255,
            "x64": True,
            "predictor": {
                "lr": 1.0,
                "tau_log10_min": -1,
                "tau_log10_max": 4,
                "tau_num": 4,
            },
            "eps_multipliers": [1.0],
            "pgd_steps": 3,
            "pgd_rel_step": 0.31875,
            "block_size": 200,
            "n_gradient_check": 0,
            "budget": {},
            "null_permutations": 2,
            "seed": 0,
        },
    )
    _, _, arrays, pointwise = attack_kernel_machine(
        kernel_fn, data, k_test, (spectrum.eigvals, spectrum.eigvecs), jac, s
    )
    labels = (arrays["y"][:, 0] > 0).astype(int)
    pw = apw.Pointwise("cifar2", "fc1", arrays["taus"], labels, pointwise)
    rows = ac.finding4_rows([pw], {}) + ac.finding6_rows(
        [pw], {"dataset": "cifar2", "arch": "fc1"}, 0.1, {}
    )
    assert len(rows) == 3 and all(set(r) == set(core.COLUMNS) for r in rows)
    if permuted:
        assert "pass" not in _verdicts(rows), [r["note"] for r in rows]


# ---------------------------------------------------------------- t rule, members


def test_pooled_evidence_carries_the_permutation_df():
    """With P = 2 permutations the permutation spread has 1 df: the SE carries the
    Satterthwaite df of SE_boot² + sd_perm²(1 + 1/P), between 1 and inf."""
    rng = np.random.default_rng(3)
    meas = [rng.random(50) < 0.7]
    null = [rng.random((2, 50)) < np.array([[0.3], [0.6]])]
    ev = ac.pooled_evidence("s", meas, null, seed=1)
    se_boot = core.bootstrap_se(
        lambda i: meas[0][i].mean() - null[0][:, i].mean(), 50, ac.BOOT_REPS, 1
    )
    sd = np.std(null[0].mean(axis=1), ddof=1)
    assert ev.df == pytest.approx(core.combined_df(se_boot, sd * math.sqrt(1.5), 1))
    assert ev.replicates == 2 and 1 <= ev.df < 50
    assert ev.crit > 2.5  # not judged at 2 SE
    assert ac.pooled_evidence("t", meas, None, threshold=0.9).df is None  # bootstrap


def test_finding6_pooled_row_fails_when_one_kernel_fails():
    """Three accurate non-robust kernels and one whose PGD robust accuracy is far
    above near_zero: the pooled PGD part is inside the threshold's noise, but the
    row fails on that kernel; the notebook row (FC1 alone) is the paper's claim."""
    pws = [_f6(0.85, 0.5, 0.8, 0.02, 0.0, arch=a) for a in ("fc1", "fc2", "fc3")]
    pws.append(_f6(0.85, 0.5, 0.8, 0.4, 0.4, arch="fc5"))
    nb = {"dataset": "cifar2", "arch": "fc1"}
    notebook, pooled = ac.finding6_rows(pws, nb, 0.1, {})
    assert notebook["verdict"] == "pass" and notebook["claim"] == ac.CLAIM_6
    assert "the paper's claim" in notebook["note"]
    assert pooled["verdict"] == "fail", pooled["note"]
    assert "[member fc5]" in pooled["statistic"]
    assert "extension" in pooled["claim"] and "not the paper's claim" in pooled["claim"]
    assert "fc1: " in pooled["note"] and "fc5: " in pooled["note"]
    # the pooled evidence alone would not fail
    assert "pooled verdict fail" not in pooled["note"], pooled["note"]


def test_finding6_notes_explain_pgd_equal_to_fgsm():
    pw = _f6(0.85, 0.5, 0.8, 0.02, 0.0)
    differ = int(np.sum(pw.robust("fgsm")[0, -1] != pw.robust("pgd")[0, -1]))
    rows = ac.finding6_rows([pw], {"dataset": "cifar2", "arch": "fc1"}, 0.1, {})
    assert all("not a bug" in r["note"] for r in rows)
    assert f"PGD and FGSM differ on {differ} of 200 points" in rows[0]["note"]
    pw.correct["pgd"][...] = pw.correct["fgsm"]
    rows = ac.finding6_rows([pw], {"dataset": "cifar2", "arch": "fc1"}, 0.1, {})
    assert "PGD and FGSM differ on 0 of 200 points" in rows[0]["note"]
