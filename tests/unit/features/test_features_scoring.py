"""Tests of ntkadv.features.scoring / rescore / projections: label-free scoring.

The ± trick is checked against the direct computation (the previous
`score_features`: the FGSM point of every feature from its loss gradient, exact
kernel rows recomputed there) for the true labels and for label permutations, and
against brute-force FGSM (autodiff through `kernel_fn`, one feature and one point
at a time).
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from _shared import (
    EPS,
    N_EVAL,
    N_TRAIN,
    feature_problem,
    rbf_kernel_fn,
    reference_loss,
)
from ntkadv import losses
from ntkadv.claims.nulls import label_permutations
from ntkadv.features import algebra, rescore, scoring
from ntkadv.features.projections import PairProjector

INDICES = (0, 1, 2, 5, 11, N_TRAIN - 1)


def direct_scores(p, y_train, indices=INDICES, eigvecs=None):
    """The direct computation: x_adv from the loss gradient, rows recomputed there.

    Returns (correct_clean, correct_adv) (K, m), attacked correctness not AND-ed
    with clean correctness.
    """
    eigvecs = p["eigvecs"] if eigvecs is None else eigvecs
    idx = np.asarray(indices)
    v = eigvecs[:, idx]
    w = algebra.feature_weights(p["eigvals"], eigvecs, y_train, idx)
    f_clean = algebra.feature_outputs(p["k_eval_train"], v, w)
    grad = algebra.feature_loss_gradients(
        f_clean, p["contract"](v), w, p["y_eval"], p["task"]
    )
    x_eval = p["x_eval"].reshape(N_EVAL, -1)
    x_adv = algebra.fgsm_points(x_eval[None], grad, EPS)
    rows = p["rows"](x_adv.reshape(-1, x_eval.shape[1])).reshape(idx.size, N_EVAL, -1)
    f_adv = np.einsum("imn,ni,ir->imr", rows, v, w)
    return (
        losses.predictions_correct(f_clean, p["y_eval"], p["task"]),
        losses.predictions_correct(f_adv, p["y_eval"], p["task"]),
    )


def label_free(p, sides, indices=INDICES, eigvecs=None, batch=5):
    eigvecs = p["eigvecs"] if eigvecs is None else eigvecs
    idx = np.asarray(indices)
    project = PairProjector(p["kernel_fn"], p["x_train"], batch, train_block=7)
    return scoring.label_free_projections(
        eigvals=p["eigvals"],
        eigvecs=eigvecs,
        indices=idx,
        k_eval_train=p["k_eval_train"],
        grad_p=p["contract"](eigvecs[:, idx]),
        x_eval=p["x_eval"].reshape(N_EVAL, -1),
        project=project,
        eps=EPS,
        sides=sides,
    )


def label_sets(p, count=6):
    perms = label_permutations(N_TRAIN, count, seed=3)
    return np.concatenate(
        [p["y_train"][None], rescore.permuted_targets(p["y_train"], perms)]
    )


def attacked_both_sides(lf, ys, p):
    """Attacked correctness (not AND-ed) from both stored sides, per label set."""
    w = rescore.weights_for(lf, ys)
    pc = np.broadcast_to(lf.p_clean, (ys.shape[0], *lf.p_clean.shape))
    side = algebra.attack_sides(pc, w, p["y_eval"], p["task"])
    p_adv = np.where(side > 0, lf.p_plus, np.where(side < 0, lf.p_minus, pc))
    f_adv = p_adv[..., None] * w[:, :, None, :]
    return losses.predictions_correct(f_adv, p["y_eval"], p["task"])


@pytest.mark.parametrize("task", ["binary", "multiclass"])
@pytest.mark.parametrize("family", ["fc", "twolayer"])
def test_plus_minus_trick_matches_the_direct_computation(family, task):
    """Both sides stored: clean and attacked correctness equal the direct
    computation for the true labels and every permutation; robust = clean AND
    attacked."""
    p = feature_problem(family, task)
    lf = label_free(p, "both")
    ys = label_sets(p)
    r = rescore.rescore(lf, ys, p["y_eval"], task)
    attacked = attacked_both_sides(lf, ys, p)
    for j, y in enumerate(ys):
        clean, adv = direct_scores(p, y)
        np.testing.assert_array_equal(r.correct_clean[j], clean)
        np.testing.assert_array_equal(attacked[j], adv)
        np.testing.assert_array_equal(r.correct_robust[j], clean & adv)
    assert not r.unresolved.any()
    # the direct computation counts misclassified points pushed to the right class
    # as robust (the old definition); the AND removes exactly those
    assert (r.correct_robust <= r.correct_clean).all()


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_toward_side_alone_gives_the_same_robustness(task):
    """Storing only the side that moves p_i toward zero (K·m rows instead of
    2·K·m) leaves robust correctness unchanged for every label set."""
    p = feature_problem("fc", task)
    ys = label_sets(p)
    both = rescore.rescore(label_free(p, "both"), ys, p["y_eval"], task)
    lf = label_free(p, "toward")
    toward = rescore.rescore(lf, ys, p["y_eval"], task)
    np.testing.assert_array_equal(toward.correct_clean, both.correct_clean)
    np.testing.assert_array_equal(toward.correct_robust, both.correct_robust)
    assert not toward.unresolved.any()
    # exactly one side per pair is stored
    np.testing.assert_array_equal(np.isfinite(lf.p_plus) ^ np.isfinite(lf.p_minus), 1)
    # and it is the one that moves p toward zero
    np.testing.assert_array_equal(np.isfinite(lf.p_plus), lf.p_clean < 0)


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_robustness_matches_brute_force_fgsm(task):
    p = feature_problem("fc", task)
    project = PairProjector(p["kernel_fn"], p["x_train"], 4, train_block=N_TRAIN)
    idx = np.asarray(INDICES)
    lf, scores = scoring.score_features(
        y_train=p["y_train"],
        y_eval=p["y_eval"],
        labels_eval=p["labels_eval"],
        task=task,
        num_classes=p["n_cls"],
        eigvals=p["eigvals"],
        eigvecs=p["eigvecs"],
        indices=idx,
        k_eval_train=p["k_eval_train"],
        grad_p=p["contract"](p["eigvecs"][:, idx]),
        x_eval=p["x_eval"].reshape(N_EVAL, -1),
        project=project,
        eps=EPS,
    )
    coefs = algebra.feature_coefficients(p["eigvals"], p["eigvecs"], p["y_train"], idx)
    correct_adv = np.zeros((idx.size, N_EVAL), dtype=bool)
    correct_clean = np.zeros((idx.size, N_EVAL), dtype=bool)

    @jax.jit
    def grad_one(x, y, c):  # one point, one feature: autodiff through kernel_fn
        return jax.grad(
            lambda x: reference_loss(p["kernel_fn"](x, p["x_train"]) @ c, y, task)
        )(x)

    for j in range(idx.size):
        for i in range(N_EVAL):
            x, y = p["x_eval"][i : i + 1], p["y_eval"][i : i + 1]
            x_adv = np.clip(x + EPS * np.sign(grad_one(x, y, coefs[:, j])), 0, 1)
            for xx, store in ((x, correct_clean), (x_adv, correct_adv)):
                f = np.asarray(p["kernel_fn"](xx, p["x_train"]) @ coefs[:, j])[0]
                store[j, i] = losses.predictions_correct(f[None], y, task)[0]
    robust = correct_clean & correct_adv
    np.testing.assert_array_equal(scores.correct_clean, correct_clean)
    np.testing.assert_array_equal(scores.correct_robust, robust)
    np.testing.assert_allclose(scores.robustness, robust.mean(axis=1))
    np.testing.assert_allclose(scores.usefulness, correct_clean.mean(axis=1))
    for c in range(p["n_cls"]):  # per-class accuracy by an explicit loop
        sel = [i for i in range(N_EVAL) if p["labels_eval"][i] == c]
        np.testing.assert_allclose(
            scores.robustness_per_class[:, c], robust[:, sel].mean(axis=1)
        )
    assert scores.unresolved == 0
    assert lf.eigvecs.shape == (N_TRAIN, idx.size)


@pytest.mark.parametrize("task", ["binary", "multiclass"])
@pytest.mark.parametrize("seed", [1, 2])
def test_scores_invariant_to_eigenvector_sign(task, seed):
    p = feature_problem("fc", task)
    flips = np.random.default_rng(seed).choice([-1.0, 1.0], size=N_TRAIN)
    ys = label_sets(p, 3)
    a = rescore.rescore(label_free(p, "toward"), ys, p["y_eval"], task)
    b = rescore.rescore(
        label_free(p, "toward", eigvecs=p["eigvecs"] * flips[None, :]),
        ys,
        p["y_eval"],
        task,
    )
    np.testing.assert_array_equal(a.correct_clean, b.correct_clean)
    np.testing.assert_array_equal(a.correct_robust, b.correct_robust)


@pytest.mark.parametrize("kernel", ["rbf", "fc"])
def test_pair_projector_matches_kernel_rows(kernel):
    """Exact for a smooth kernel; neural-tangents' float64 NTK itself changes by
    ~4e-9 (relative) with the shape of the x2 block, hence the looser tolerance."""
    p = feature_problem("fc", "binary")
    kernel_fn = rbf_kernel_fn if kernel == "rbf" else p["kernel_fn"]
    rtol = 1e-12 if kernel == "rbf" else 1e-7
    rng = np.random.default_rng(0)
    x0 = rng.uniform(size=(11, 16))
    sign_g = rng.choice([-1.0, 0.0, 1.0], size=(11, 16))
    side = rng.choice([-1.0, 0.0, 1.0], size=11)
    v = rng.normal(size=(N_TRAIN, 11))
    x = np.clip(x0 + EPS * side[:, None] * sign_g, 0, 1).reshape(11, 4, 4, 1)
    want = np.einsum("bn,nb->b", np.asarray(kernel_fn(x, p["x_train"])), v)
    for batch, block in ((4, 5), (11, N_TRAIN), (3, 100)):
        project = PairProjector(kernel_fn, p["x_train"], batch, block)
        got = project(x0, sign_g, side, v, EPS)
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)
        assert project.calls == -(-11 // batch)


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_attack_sides_are_the_loss_gradient_signs(task):
    """Exact signs equal sign(∂L/∂f · w) where the loss gradient is not saturated,
    and stay nonzero where it is (σ(f) = 1 or a one-hot softmax in float64)."""
    rng = np.random.default_rng(1)
    k = 1 if task == "binary" else 4
    w = rng.normal(size=(7, k))
    p_clean = rng.normal(size=(7, 9))
    lab = rng.integers(0, max(k, 2), 9)
    y = (2.0 * lab - 1.0)[:, None] if task == "binary" else np.eye(k)[lab]
    f = p_clean[..., None] * w[:, None, :]
    ref = np.sign(np.einsum("imr,ir->im", losses.loss_output_gradient(f, y, task), w))
    np.testing.assert_array_equal(algebra.attack_sides(p_clean, w, y, task), ref)
    big = 1e4 * np.sign(p_clean)  # saturated outputs
    sides = algebra.attack_sides(big, w, y, task)
    assert np.all(sides != 0)
    # at correctly classified points the attack moves p toward zero
    f_big = big[..., None] * w[:, None, :]
    correct = losses.predictions_correct(f_big, y, task)
    np.testing.assert_array_equal(sides[correct], algebra.toward_sides(big)[correct])


def test_nonnull_indices_drop_the_clipped_tail():
    lam = np.array([5.0, 3.0, 1.0, 1e-9, 1e-9])
    valid, excluded = scoring.nonnull_indices(lam, 1e-9, 2)
    np.testing.assert_array_equal(valid, [0, 1, 2])
    assert excluded == 2
    valid, excluded = scoring.nonnull_indices(lam, 1e-12, 0)
    assert excluded == 0 and valid.size == 5


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
