"""Tests of ntkadv.features.scoring: usefulness and robustness of eigenfeatures.

Robustness is checked against brute-force FGSM (autodiff through `kernel_fn`, one
feature and one point at a time) and per-class accuracy against explicit loops.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from _shared import EPS, N_EVAL, N_TRAIN, feature_problem, reference_loss
from ntkadv import losses
from ntkadv.features import algebra, scoring


def _score(p, eigvecs=None, indices=(0, 1, 2, 5, N_TRAIN - 1)):
    eigvecs = p["eigvecs"] if eigvecs is None else eigvecs
    idx = np.asarray(indices)
    return scoring.score_features(
        eigvals=p["eigvals"],
        eigvecs=eigvecs,
        y_train=p["y_train"],
        indices=idx,
        k_eval_train=p["k_eval_train"],
        grad_p=p["contract"](eigvecs[:, idx]),
        x_eval=p["x_eval"].reshape(N_EVAL, -1),
        y_eval=p["y_eval"],
        labels_eval=p["labels_eval"],
        kernel_rows_fn=p["rows"],
        eps=EPS,
        task=p["task"],
        num_classes=p["n_cls"],
        chunk=2,
    )


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_robustness_matches_brute_force_fgsm(task):
    p = feature_problem("fc", task)
    scores = _score(p)
    n_feat = scores.indices.size
    coefs = algebra.feature_coefficients(
        p["eigvals"], p["eigvecs"], p["y_train"], scores.indices
    )
    correct_adv = np.zeros((n_feat, N_EVAL), dtype=bool)
    correct_clean = np.zeros((n_feat, N_EVAL), dtype=bool)

    @jax.jit
    def grad_one(x, y, c):  # one point, one feature: autodiff through kernel_fn
        return jax.grad(
            lambda x: reference_loss(p["kernel_fn"](x, p["x_train"]) @ c, y, task)
        )(x)

    for j in range(n_feat):
        for i in range(N_EVAL):
            x, y = p["x_eval"][i : i + 1], p["y_eval"][i : i + 1]
            x_adv = np.clip(x + EPS * np.sign(grad_one(x, y, coefs[:, j])), 0, 1)
            for xx, store in ((x, correct_clean), (x_adv, correct_adv)):
                f = np.asarray(p["kernel_fn"](xx, p["x_train"]) @ coefs[:, j])[0]
                store[j, i] = losses.predictions_correct(f[None], y, task)[0]
    np.testing.assert_array_equal(scores.correct_clean, correct_clean)
    np.testing.assert_array_equal(scores.correct_adv, correct_adv)
    np.testing.assert_allclose(scores.robustness, correct_adv.mean(axis=1))
    np.testing.assert_allclose(scores.usefulness, correct_clean.mean(axis=1))
    # per-class accuracy by an explicit loop
    for c in range(p["n_cls"]):
        sel = [i for i in range(N_EVAL) if p["labels_eval"][i] == c]
        np.testing.assert_allclose(
            scores.robustness_per_class[:, c], correct_adv[:, sel].mean(axis=1)
        )


@pytest.mark.parametrize("task", ["binary", "multiclass"])
@pytest.mark.parametrize("seed", [1, 2])
def test_scores_invariant_to_eigenvector_sign(task, seed):
    p = feature_problem("fc", task)
    flips = np.random.default_rng(seed).choice([-1.0, 1.0], size=N_TRAIN)
    a, b = _score(p), _score(p, eigvecs=p["eigvecs"] * flips[None, :])
    for field in ("usefulness", "robustness", "correct_clean", "correct_adv"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    np.testing.assert_array_equal(a.robustness_per_class, b.robustness_per_class)


def test_scale_feature_indices():
    nb = [0, 1, 2, 3, 4, 5, 10, 25, 1500, 1987, 1988, 1998]
    np.testing.assert_array_equal(scoring.scale_feature_indices(nb, 2000), nb)
    np.testing.assert_array_equal(
        scoring.scale_feature_indices(nb, 1000),
        [0, 1, 2, 3, 4, 5, 10, 25, 750, 987, 988, 998],
    )
    small = scoring.scale_feature_indices(nb, 40)
    assert small.max() == 38 and np.all(np.diff(small) > 0)


def test_gradient_images_rescale_each_row_to_the_unit_interval():
    img = scoring.gradient_images(np.array([[1.0, 3.0, 2.0], [4.0, 4.0, 4.0]]))
    np.testing.assert_allclose(img, [[0, 1, 0.5], [0, 0, 0]])
