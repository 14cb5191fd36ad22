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
