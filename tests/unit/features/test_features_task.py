"""Tests of ntkadv.features.task on files: a training set with a duplicated image
(a null-space eigenfeature, eigenvalue at the clipping floor) is scored and ranked
without it, and the stored label-free projections rescore to the stored scores."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from ntkadv import h5io
from ntkadv.features import rescore, task
from ntkadv.kernels.task import (
    KernelSettings,
    compute_ntk_gram,
    compute_ntk_input_jacobian,
)
from ntkadv.spectra.task import eigendecompose_gram

LOG = logging.getLogger("test")
SPEC = {"family": "fc", "depth": 1}


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    """data / gram / jacobian / eigh files of 20 binary 4x4 images, two identical."""
    root = tmp_path_factory.mktemp("features")
    rng = np.random.default_rng(0)
    x_train = rng.uniform(size=(20, 4, 4, 1)).astype(np.float32)
    x_train[7] = x_train[3]  # duplicated image: Θ(X, X) has a null direction
    lab_train, lab_test = np.arange(20) % 2, np.arange(10) % 2
    data = {
        "x_train": x_train,
        "x_test": rng.uniform(size=(10, 4, 4, 1)).astype(np.float32),
        "labels_train": lab_train,
        "labels_test": lab_test,
        "y_train": (2.0 * lab_train - 1)[:, None].astype(np.float32),
        "y_test": (2.0 * lab_test - 1)[:, None].astype(np.float32),
    }
    paths = {k: str(root / f"{k}.h5") for k in ("data", "gram", "jacobian", "eigh")}
    h5io.write(paths["data"], data, {"task": "binary", "classes": [0, 1]})
    s = KernelSettings(arch=SPEC, block_size=8, x64=True)
    ids = {"dataset": "toy", "arch": "fc1"}
    compute_ntk_gram({"data": paths["data"]}, {"gram": paths["gram"]}, s, ids, LOG)
    compute_ntk_input_jacobian(
        {"data": paths["data"]}, {"jacobian": paths["jacobian"]}, s, ids, LOG
    )
    eigendecompose_gram(
        {"gram": paths["gram"]}, {"eigh": paths["eigh"]}, None, ids, LOG
    )
    return root, paths, ids


def test_null_space_feature_is_excluded_and_scores_rescore(caches):
    root, paths, ids = caches
    n_clipped = h5io.read_attrs(paths["eigh"])["n_clipped"]
    assert n_clipped >= 1
    out = {"scores": str(root / "scores.h5"), "csv": str(root / "scores.csv")}
    s = task.ScoreSettings(
        arch=SPEC,
        eps=0.1,
        n_eval=None,
        top_k=8,
        spread=5,
        frequency_k=3,
        chunk=7,
        image_indices=(0, 1, 19),
        image_reference_n=20,
        image_test_index=2,
        prop1_points=4,
        block=8,
        x64=True,
    )
    task.score_features(paths, out, s, ids, LOG)
    arr, attrs = h5io.read(out["scores"]), h5io.read_attrs(out["scores"])
    assert attrs["n_null_space"] == n_clipped
    valid = np.arange(20 - n_clipped)  # the null space is the last n_clipped
    rest = valid[8:]
    spread = rest[np.round(np.linspace(0, rest.size - 1, 5)).astype(int)]
    np.testing.assert_array_equal(
        arr["indices"], np.union1d(np.union1d(valid[:8], spread), [0, 1])
    )
    assert 19 not in arr["image_indices"] and arr["gradients"].shape[0] == 2
    np.testing.assert_array_equal(
        arr["frequency_indices"], np.concatenate([valid[:3], valid[-3:]])
    )
    assert arr["frequency_gradients"].shape == (6, 16)
    # the image features' rows of the frequency stack are the gradient images
    np.testing.assert_allclose(arr["frequency_gradients"][:2], arr["gradients"])
    lf = rescore.LabelFree.from_arrays(arr)
    r = rescore.rescore(lf, arr["y_train"], arr["y_eval"], "binary")
    np.testing.assert_array_equal(r.correct_robust[0], arr["correct_robust"])
    np.testing.assert_allclose(r.robustness[0], arr["robustness"])
    assert attrs["prop1"]["grad_rel_err"] < 1e-8


def test_topr_ranks_only_features_outside_the_null_space(caches):
    root, paths, ids = caches
    out = {"topr": str(root / "topr.h5"), "csv": str(root / "topr.csv")}
    s = task.ToprSettings(
        arch=SPEC,
        eps=0.1,
        n_eval=None,
        block=8,
        x64=True,
        n_val=4,
        n_candidates=None,
        grid=(1, 2, 5),
        pgd_steps=2,
        pgd_rel_step=0.5,
        null_permutations=2,
        seed=0,
    )
    task.evaluate_topr_kernels(paths, out, s, ids, LOG)
    arr = h5io.read(out["topr"])
    n_clipped = h5io.read_attrs(paths["eigh"])["n_clipped"]
    assert arr["candidates"].size == 20 - n_clipped
    assert arr["ranked"].shape == (3, 20 - n_clipped)
    assert arr["clean_sets"].shape == (3, arr["r"].size, 6)
    assert (arr["fgsm_own_sets"] <= arr["clean_sets"]).all()
    np.testing.assert_array_equal(arr["r"], [1, 2, 5, 20 - n_clipped])


# ---------------------------------------------------------------- extra ε


def _score(paths, root, name, extra=()):
    out = {"scores": str(root / f"{name}.h5"), "csv": str(root / f"{name}.csv")}
    s = task.ScoreSettings(
        arch=SPEC,
        eps=0.1,
        n_eval=None,
        top_k=8,
        spread=5,
        frequency_k=3,
        chunk=7,
        image_indices=(),
        image_reference_n=20,
        image_test_index=2,
        prop1_points=4,
        block=8,
        x64=True,
        extra_eps=tuple(extra),
    )
    task.score_features(paths, out, s, {"dataset": "toy", "arch": "fc1"}, LOG)
    return out


def _same(a, b):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_extra_eps_scores_leave_the_paper_eps_outputs_unchanged(caches):
    """No key: no extra arrays or attrs. An extra ε equal to the dataset's: its
    projections and robustness are the paper-ε ones, every paper-ε array and the
    CSV are those of the run without the key, and the rescoring at the extra ε
    (`load_correctness(extra=i)`) gives the paper-ε correctness."""
    import pandas as pd

    from ntkadv.features.summary import load_correctness

    root, paths, _ = caches
    plain = _score(paths, root, "plain")
    same = _score(paths, root, "same", extra=(0.1,))
    other = _score(paths, root, "other", extra=(0.3, 0.1))
    a0, a1, a2 = (h5io.read(o["scores"]) for o in (plain, same, other))
    assert not any("extra" in k for k in a0)
    assert "extra_eps" not in h5io.read_attrs(plain["scores"])
    for key, value in a0.items():
        _same(a1[key], value)
        _same(a2[key], value)
    pd.testing.assert_frame_equal(pd.read_csv(same["csv"]), pd.read_csv(plain["csv"]))
    _same(a1["p_plus_extra"][0], a0["p_plus"])
    _same(a1["correct_robust_extra"][0], a0["correct_robust"])
    _same(a2["correct_robust_extra"][1], a0["correct_robust"])
    assert h5io.read_attrs(other["scores"])["extra_eps"] == [0.3, 0.1]
    _, c0 = load_correctness(plain["scores"], None, 3, 0)
    _, c1 = load_correctness(same["scores"], None, 3, 0, extra=0)
    _, c3 = load_correctness(other["scores"], None, 3, 0, extra=0)
    _same(c1.robust, c0.robust)
    _same(c1.clean, c0.clean)
    _same(c3.clean, c0.clean)
    # a larger budget: never more robust, here strictly less somewhere
    assert (c3.robust <= c0.robust).all() and (c3.robust < c0.robust).any()


def test_extra_eps_topr_at_the_dataset_eps_repeats_the_paper_eps_ranking(caches):
    root, paths, ids = caches

    def run(name, extra):
        out = {"topr": str(root / f"{name}.h5"), "csv": str(root / f"{name}.csv")}
        s = task.ToprSettings(
            arch=SPEC,
            eps=0.1,
            n_eval=None,
            block=8,
            x64=True,
            n_val=4,
            n_candidates=None,
            grid=(1, 2, 5),
            pgd_steps=2,
            pgd_rel_step=0.5,
            null_permutations=2,
            seed=0,
            extra_eps=extra,
        )
        task.evaluate_topr_kernels(paths, out, s, ids, LOG)
        return h5io.read(out["topr"]), h5io.read_attrs(out["topr"]), out

    plain, plain_attrs, _ = run("topr_plain", ())
    same, attrs, out = run("topr_same", (0.1,))
    assert "extra_eps" not in plain_attrs and attrs["extra_eps"] == [0.1]
    assert not any(k.startswith("extra") for k in plain)
    for key, value in plain.items():
        _same(same[key], value)
    _same(same["extra_ranked"][0], plain["ranked"])
    _same(same["extra_clean_sets"][0], plain["clean_sets"])
    _same(same["extra_fgsm_own_sets"][0], plain["fgsm_own_sets"])
    from ntkadv.features.summary import _topr_rows

    paper, extra = _topr_rows([out["topr"]])
    assert "at ε = 0.1" in extra["claim"] and "at ε" not in paper["claim"]
    assert (extra["effect"], extra["effect_se"]) == (
        paper["effect"],
        paper["effect_se"],
    )
    assert extra["verdict"] == paper["verdict"]


def test_extra_eps_feature_rows_are_the_chance_corrected_rows(caches):
    """The summary's extra-ε rows: finding 1 (chance-corrected) and finding 2 at
    the extra ε, tagged; at the dataset's ε their numbers are the paper rows'."""
    from ntkadv.features.summary import (
        FeatureClaimSettings,
        FeatureNull,
        FrequencySettings,
        _dataset_rows,
        _read_scores,
    )

    root, paths, _ = caches
    same = _score(paths, root, "rows", extra=(0.1,))
    null = FeatureNull(permutations=4, seed=0)
    scored = _read_scores([same["scores"]], null)
    assert list(scored.extra) == [("toy", 0.1)]
    s = FeatureClaimSettings(
        top_k=8,
        nonrobust_max=0.05,
        consistency_top=3,
        bands={"top": [0, 2], "tail": [4, 8]},
        frequency=FrequencySettings(k=3, cut=0.25),
        null=null,
    )
    rows = _dataset_rows("toy", scored, {}, s)
    tagged = [r for r in rows if "at ε = 0.1" in r["claim"]]
    assert [r["finding"] for r in tagged] == [1, 2]
    assert all("chance-corrected" in r["claim"] for r in tagged)
    for r in tagged:
        base = r["claim"].split(" [at ε")[0]
        (paper,) = [p for p in rows if p["claim"] == base]
        assert (r["effect"], r["effect_se"], r["verdict"]) == (
            paper["effect"],
            paper["effect_se"],
            paper["verdict"],
        )


def test_extra_eps_feature_rows_carry_the_extra_eps_numbers(caches):
    """An extra ε other than the dataset's: the tagged rows are `spectrum_claims`
    of the correctness rescored at that ε (`load_correctness(extra=0)`), not of
    the paper-ε correctness."""
    from ntkadv.features import claims
    from ntkadv.features.summary import FeatureNull, _read_scores, load_correctness

    root, paths, _ = caches
    out = _score(paths, root, "rows_other", extra=(0.3,))
    null = FeatureNull(permutations=4, seed=0)
    scored = _read_scores([out["scores"]], null)
    ((key, archs),) = scored.extra.items()
    assert key == ("toy", 0.3)
    sweep = claims.ORIENTATION_PERMUTATIONS
    _, direct = load_correctness(out["scores"], None, 4, 0, extra=0, sweep=sweep)
    _, paper = load_correctness(out["scores"], None, 4, 0)
    _same(archs[0].robust, direct.robust)
    assert (direct.robust != paper.robust).any()
    kw = {"top_k": 8, "nonrobust_max": 0.05, "bands": {"top": [0, 2], "tail": [4, 8]}}
    at = claims.spectrum_claims("toy", archs, figure="f", at_eps=(0.3, 0.1), **kw)
    ref = claims.spectrum_claims("toy", [direct], figure="f", **kw)
    for row in at:
        (same,) = [r for r in ref if row["claim"].startswith(r["claim"])]
        assert (row["effect"], row["effect_se"]) == (same["effect"], same["effect_se"])


@pytest.mark.parametrize("point_block", [1, 3, 8])
def test_blocked_ranking_projections_equal_the_one_contraction(caches, point_block):
    """`_Caches.label_free_at` with the Jacobian contracted per chunk, a few
    points at a time (top-r's ranking, issue 24), returns exactly the projections
    of the one contraction of every index (score_features), at two ε."""
    _, paths, _ = caches
    c = task._Caches(paths, SPEC, 8, True)
    indices = c.nonnull(LOG)
    k_eval = h5io.read(paths["gram"], ["k_test_train"])["k_test_train"][:8]
    project = c.projector()
    args = (indices, k_eval, 0, 8, (0.1, 0.03), 7, project, LOG)
    ref = c.label_free_at(*args)
    got = c.label_free_at(*args, point_block=point_block)
    for want, have in zip(ref, got, strict=True):
        for field in rescore.LABEL_FREE_KEYS:
            _same(getattr(want, field), getattr(have, field))
