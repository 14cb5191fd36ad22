"""Tests for ntkadv.features: eigenfeatures, their scores, Prop. 1, top-r kernels.

Every property is checked against an independent computation: per-feature autodiff
through `kernel_fn` (never the Jacobian contraction under test), `np.linalg.solve`
for kernel regression, `np.linalg.pinv` for Θ'_r, brute-force loops for FGSM
robustness and per-class accuracy, and scipy's subspace angles.
"""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from scipy.linalg import subspace_angles

from ntkadv import attacks, features, jacobians
from ntkadv.kernels import kernel_fn_from_spec

SHAPE = (4, 4, 1)  # tiny images, d = 16
N_TRAIN, N_EVAL = 24, 6
EPS = 0.1
SPECS = {
    "fc": {"family": "fc", "depth": 1},
    "conv": {"family": "conv", "depth": 1},
    "twolayer": {"family": "twolayer"},
}


@functools.cache
def _problem(family: str, task: str, seed: int = 0):
    """Random images, labels, the kernel, its spectrum and a brute-force Jacobian."""
    rng = np.random.default_rng(seed)
    n_cls = 2 if task == "binary" else 3
    x_train = rng.uniform(size=(N_TRAIN, *SHAPE))
    x_eval = rng.uniform(size=(N_EVAL, *SHAPE))
    lab_train = rng.integers(0, n_cls, N_TRAIN)
    lab_eval = np.arange(N_EVAL) % n_cls
    if task == "binary":
        y_train = (2.0 * lab_train - 1.0)[:, None]
        y_eval = (2.0 * lab_eval - 1.0)[:, None]
    else:
        y_train, y_eval = np.eye(n_cls)[lab_train], np.eye(n_cls)[lab_eval]
    kernel_fn = jax.jit(kernel_fn_from_spec(SPECS[family]))
    gram = np.asarray(kernel_fn(x_train, x_train))
    gram = 0.5 * (gram + gram.T)
    eigvals, eigvecs = np.linalg.eigh(gram)
    eigvals, eigvecs = eigvals[::-1].copy(), eigvecs[:, ::-1].copy()
    # D(x) per evaluation point: (m, n, d), the reference the cache stands in for
    jac = jax.jacfwd(lambda x: kernel_fn(x, x_train))(x_eval)  # (m, n, m, *SHAPE)
    jac = np.asarray(jac).reshape(N_EVAL, N_TRAIN, N_EVAL, -1)
    jac = jac[np.arange(N_EVAL), :, np.arange(N_EVAL)]
    return {
        "task": task,
        "n_cls": n_cls,
        "x_train": x_train,
        "x_eval": x_eval,
        "y_train": y_train,
        "y_eval": y_eval,
        "labels_eval": lab_eval,
        "kernel_fn": kernel_fn,
        "gram": gram,
        "eigvals": eigvals,
        "eigvecs": eigvecs,
        "k_eval_train": np.asarray(kernel_fn(x_eval, x_train)),
        "contract": lambda c: np.einsum("mnd,nj->mdj", jac, c),
        "rows": lambda xf: np.asarray(kernel_fn(xf.reshape(-1, *SHAPE), x_train)),
    }


def _ref_loss(f, y, task):
    """Cross-entropy written out independently (supp. Eqs. 4 and 7), summed."""
    if task == "binary":
        y_hat = (y[:, 0] + 1) / 2
        p = jax.nn.sigmoid(f[:, 0])
        return -jnp.sum(y_hat * jnp.log(p) + (1 - y_hat) * jnp.log1p(-p))
    return -jnp.sum(jax.nn.log_softmax(f, axis=1) * y)


def _score(p, eigvecs=None, indices=(0, 1, 2, 5, N_TRAIN - 1)):
    eigvecs = p["eigvecs"] if eigvecs is None else eigvecs
    idx = np.asarray(indices)
    return features.score_features(
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
@pytest.mark.parametrize("family", ["fc", "twolayer"])
def test_features_sum_to_kernel_regression(family, task):
    p = _problem(family, task)
    everything = np.arange(N_TRAIN)
    c = features.feature_coefficients(
        p["eigvals"], p["eigvecs"], p["y_train"], everything
    )
    c_solve = np.linalg.solve(p["gram"], p["y_train"])
    np.testing.assert_allclose(c.sum(axis=1), c_solve, rtol=1e-8, atol=1e-10)
    w = features.feature_weights(p["eigvals"], p["eigvecs"], p["y_train"], everything)
    f = features.feature_outputs(p["k_eval_train"], p["eigvecs"], w)
    chex.assert_shape(f, (N_TRAIN, N_EVAL, p["y_train"].shape[1]))
    np.testing.assert_allclose(
        f.sum(axis=0), p["k_eval_train"] @ c_solve, rtol=1e-8, atol=1e-10
    )


@pytest.mark.parametrize("task", ["binary", "multiclass"])
@pytest.mark.parametrize("family", ["fc", "conv"])
def test_contraction_gradients_equal_per_feature_autodiff(family, task):
    p = _problem(family, task)
    idx = np.array([0, 3, 11, N_TRAIN - 1])
    w = features.feature_weights(p["eigvals"], p["eigvecs"], p["y_train"], idx)
    grad_p = p["contract"](p["eigvecs"][:, idx])  # ONE contraction for all features
    got = features.feature_input_gradients(grad_p, w)  # (K, m, d, k)
    coefs = features.feature_coefficients(p["eigvals"], p["eigvecs"], p["y_train"], idx)
    for j in range(idx.size):
        for r in range(w.shape[1]):

            def out(x, c=coefs[:, j, r]):
                return jnp.sum(p["kernel_fn"](x, p["x_train"]) @ c)

            ref = np.asarray(jax.grad(out)(p["x_eval"])).reshape(N_EVAL, -1)
            np.testing.assert_allclose(got[j, :, :, r], ref, rtol=1e-7, atol=1e-9)
    # loss gradients: the rank-one shortcut vs autodiff of the loss itself
    f = features.feature_outputs(p["k_eval_train"], p["eigvecs"][:, idx], w)
    lg = features.feature_loss_gradients(f, grad_p, w, p["y_eval"], task)
    chex.assert_shape(lg, (idx.size, N_EVAL, int(np.prod(SHAPE))))
    for j in range(idx.size):

        def total(x, c=coefs[:, j]):
            return _ref_loss(p["kernel_fn"](x, p["x_train"]) @ c, p["y_eval"], task)

        ref = np.asarray(jax.grad(total)(p["x_eval"])).reshape(N_EVAL, -1)
        np.testing.assert_allclose(lg[j], ref, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_robustness_matches_brute_force_fgsm(task):
    p = _problem("fc", task)
    scores = _score(p)
    n_feat = scores.indices.size
    coefs = features.feature_coefficients(
        p["eigvals"], p["eigvecs"], p["y_train"], scores.indices
    )
    correct_adv = np.zeros((n_feat, N_EVAL), dtype=bool)
    correct_clean = np.zeros((n_feat, N_EVAL), dtype=bool)

    @jax.jit
    def grad_one(x, y, c):  # one point, one feature: autodiff through kernel_fn
        return jax.grad(
            lambda x: _ref_loss(p["kernel_fn"](x, p["x_train"]) @ c, y, task)
        )(x)

    for j in range(n_feat):
        for i in range(N_EVAL):
            x, y = p["x_eval"][i : i + 1], p["y_eval"][i : i + 1]
            x_adv = np.clip(x + EPS * np.sign(grad_one(x, y, coefs[:, j])), 0, 1)
            for xx, store in ((x, correct_clean), (x_adv, correct_adv)):
                f = np.asarray(p["kernel_fn"](xx, p["x_train"]) @ coefs[:, j])[0]
                store[j, i] = attacks.predictions_correct(f[None], y, task)[0]
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
    p = _problem("fc", task)
    flips = np.random.default_rng(seed).choice([-1.0, 1.0], size=N_TRAIN)
    a, b = _score(p), _score(p, eigvecs=p["eigvecs"] * flips[None, :])
    for field in ("usefulness", "robustness", "correct_clean", "correct_adv"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    np.testing.assert_array_equal(a.robustness_per_class, b.robustness_per_class)


def test_proposition1_decomposition_float64():
    p = _problem("fc", "binary")
    everything = np.arange(N_TRAIN)
    w = features.feature_weights(p["eigvals"], p["eigvecs"], p["y_train"], everything)
    f_feat = features.feature_outputs(p["k_eval_train"], p["eigvecs"], w)
    lg = features.feature_loss_gradients(
        f_feat, p["contract"](p["eigvecs"]), w, p["y_eval"], "binary"
    )
    c_solve = np.linalg.solve(p["gram"], p["y_train"])
    f_full = p["k_eval_train"] @ c_solve
    np.testing.assert_allclose(f_feat.sum(axis=0), f_full, rtol=1e-9, atol=1e-11)
    alpha, decomposed = features.proposition1_decomposition(
        f_full, f_feat, lg, p["y_eval"]
    )
    chex.assert_tree_all_finite(alpha)

    def total(x):
        return _ref_loss(
            p["kernel_fn"](x, p["x_train"]) @ c_solve, p["y_eval"], "binary"
        )

    ref = np.asarray(jax.grad(total)(p["x_eval"])).reshape(N_EVAL, -1)
    scale = np.abs(ref).max()
    assert np.abs(decomposed - ref).max() <= 1e-10 * scale


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_topr_kernels(task):
    p = _problem("fc", task)
    rng = np.random.default_rng(3)
    ranked = features.robustness_ranking(rng.uniform(size=N_TRAIN), np.arange(N_TRAIN))
    rs = features.topr_grid(N_TRAIN, [1, 3, 7, 100])
    np.testing.assert_array_equal(rs, [1, 3, 7, N_TRAIN])
    coefs = features.topr_coefficients(
        p["eigvals"], p["eigvecs"], p["y_train"], ranked, rs
    )
    # r = rank(Θ): the full kernel machine
    np.testing.assert_allclose(
        coefs[-1], np.linalg.solve(p["gram"], p["y_train"]), rtol=1e-8, atol=1e-10
    )
    # r < n: the pseudo-inverse of Θ'_r, computed independently
    for j, r in enumerate(rs[:-1]):
        sel = ranked[:r]
        theta_r = features.topr_gram(p["eigvals"], p["eigvecs"], sel)
        np.testing.assert_allclose(np.linalg.matrix_rank(theta_r), r)
        cut = 0.5 * p["eigvals"][sel].min() / p["eigvals"][0]
        pinv = np.linalg.pinv(theta_r, rtol=cut, hermitian=True)
        np.testing.assert_allclose(
            coefs[j], pinv @ p["y_train"], rtol=1e-6, atol=1e-8 * np.abs(coefs[j]).max()
        )


def test_evaluate_topr_full_rank_matches_full_kernel():
    p = _problem("fc", "binary")
    ranked = np.arange(N_TRAIN)[::-1]
    rs = np.array([2, N_TRAIN])
    coefs = features.topr_coefficients(
        p["eigvals"], p["eigvecs"], p["y_train"], ranked, rs
    )
    c_full = np.linalg.solve(p["gram"], p["y_train"])

    def pgd_fn(c):
        return attacks.pgd(
            p["kernel_fn"],
            p["x_eval"].reshape(N_EVAL, -1),
            p["x_train"],
            c,
            p["y_eval"],
            "binary",
            EPS,
            0.05,
            3,
        )

    res = features.evaluate_topr(
        coefs=coefs,
        c_full=c_full,
        k_eval_train=p["k_eval_train"],
        x_eval=p["x_eval"].reshape(N_EVAL, -1),
        y_eval=p["y_eval"],
        contract=p["contract"],
        kernel_rows_fn=p["rows"],
        pgd_fn=pgd_fn,
        eps=EPS,
        task="binary",
    )
    for key in ("clean", "fgsm_transfer", "pgd_transfer", "fgsm_own", "pgd_own"):
        chex.assert_shape(res[key], (rs.size,))
    assert res["clean"][-1] == res["full_clean"]
    assert res["fgsm_own"][-1] == res["fgsm_transfer"][-1] == res["full_fgsm"]
    assert res["pgd_own"][-1] == res["pgd_transfer"][-1] == res["full_pgd"]


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_loss_and_accuracy_agree_with_attacks_module(task):
    p = _problem("fc", task)
    f = np.random.default_rng(4).normal(size=(3, N_EVAL, p["y_eval"].shape[1]))
    got = features.loss_output_gradient(f, p["y_eval"], task)
    correct = features.predictions_correct(f, p["y_eval"], task)
    for j in range(3):
        ref = attacks.loss_output_gradient(jnp.asarray(f[j]), p["y_eval"], task)
        np.testing.assert_allclose(got[j], np.asarray(ref), rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(
            correct[j], attacks.predictions_correct(f[j], p["y_eval"], task)
        )


def test_fgsm_points_stay_in_ball_and_box():
    rng = np.random.default_rng(5)
    x = rng.uniform(size=(7, 30))
    grad = rng.normal(size=(3, 7, 30))
    x_adv = features.fgsm_points(x[None], grad, 0.2)
    assert np.all((x_adv >= 0) & (x_adv <= 1))
    assert np.abs(x_adv - x[None]).max() <= 0.2 + 1e-15
    inside = (x > 0.2) & (x < 0.8)
    np.testing.assert_allclose(
        (x_adv - x[None])[:, inside], 0.2 * np.sign(grad)[:, inside], atol=1e-15
    )


@pytest.mark.parametrize("r", [1, 3, 5])
def test_subspace_overlap_against_scipy_angles(r):
    rng = np.random.default_rng(r)
    va = np.linalg.qr(rng.normal(size=(20, r)))[0]
    vb = np.linalg.qr(rng.normal(size=(20, r)))[0]
    ref = np.sort(np.cos(subspace_angles(va, vb)))[::-1]
    np.testing.assert_allclose(features.subspace_cosines(va, vb), ref, atol=1e-10)
    rot = np.linalg.qr(rng.normal(size=(r, r)))[0]
    assert features.subspace_overlap(va, va @ rot) == pytest.approx(1.0)
    assert features.spearman(np.arange(5), -(np.arange(5.0) ** 3)) == pytest.approx(
        -1.0
    )


def test_scale_feature_indices():
    nb = [0, 1, 2, 3, 4, 5, 10, 25, 1500, 1987, 1988, 1998]
    np.testing.assert_array_equal(features.scale_feature_indices(nb, 2000), nb)
    np.testing.assert_array_equal(
        features.scale_feature_indices(nb, 1000),
        [0, 1, 2, 3, 4, 5, 10, 25, 750, 987, 988, 998],
    )
    small = features.scale_feature_indices(nb, 40)
    assert small.max() == 38 and np.all(np.diff(small) > 0)


def test_class_accuracies_and_ranking():
    correct = np.array([[1, 0, 1, 1], [0, 0, 1, 0]], dtype=bool)
    acc = features.class_accuracies(correct, np.array([0, 0, 1, 2]), 4)
    np.testing.assert_allclose(acc[:, :3], [[0.5, 1, 1], [0, 1, 0]])
    assert np.isnan(acc[:, 3]).all()
    np.testing.assert_array_equal(
        features.robustness_ranking(np.array([0.2, 0.5, 0.5, 0.1]), [7, 9, 3, 1]),
        [3, 9, 7, 1],
    )
    img = features.gradient_images(np.array([[1.0, 3.0, 2.0], [4.0, 4.0, 4.0]]))
    np.testing.assert_allclose(img, [[0, 1, 0.5], [0, 0, 0]])


@pytest.mark.parametrize("on_disk", [False, True])
@pytest.mark.parametrize("family", ["fc", "conv"])
def test_contract_fn_rows_of_the_project_cache(family, on_disk, tmp_path):
    """Row ranges of the real InputJacobian (factored / dense, memory / file) agree
    with the brute-force Jacobian contraction."""
    p = _problem(family, "binary")
    if on_disk:
        path = tmp_path / "jacobian.h5"
        jacobians.write_input_jacobian(
            path,
            p["kernel_fn"],
            jacobians.jacobian_form(family),
            p["x_eval"],
            p["x_train"],
            block_size=10,
        )
        jac = jacobians.load_input_jacobian(path)
    else:
        build = jacobians.input_jacobian_fn(p["kernel_fn"], family)
        jac = build(p["x_eval"], p["x_train"], block_size=10)
    c = p["eigvecs"][:, :5]
    ref = p["contract"](c)
    rtol = 1e-10 if jac.form == "factored" else 1e-5  # the dense cache is float32
    for i0, i1 in ((0, N_EVAL), (0, 2), (2, 5)):
        got = features.contract_fn(jac, i0, i1)(c)
        chex.assert_shape(got, (i1 - i0, ref.shape[1], 5))
        np.testing.assert_allclose(got, ref[i0:i1], rtol=rtol, atol=rtol * 1e-2)


def test_proposition1_check_on_a_kernel_problem():
    p = _problem("twolayer", "binary")
    res = features.proposition1_check(
        gram=p["gram"],
        eigvals=p["eigvals"],
        eigvecs=p["eigvecs"],
        y_train=p["y_train"],
        k_eval_train=p["k_eval_train"],
        y_eval=p["y_eval"],
        contract=p["contract"],
    )
    assert res["grad_rel_err"] < 1e-10 and res["sum_rel_err"] < 1e-10
    # a wrong spectrum is detected (the check is not vacuous)
    bad = features.proposition1_check(
        gram=p["gram"],
        eigvals=p["eigvals"] * 1.01,
        eigvecs=p["eigvecs"],
        y_train=p["y_train"],
        k_eval_train=p["k_eval_train"],
        y_eval=p["y_eval"],
        contract=p["contract"],
    )
    assert bad["grad_rel_err"] > 1e-4 and bad["sum_rel_err"] > 1e-4


@pytest.mark.parametrize("direction", [1, -1])
def test_claim_rows_follow_their_criteria(direction):
    idx = np.arange(100)
    rob = np.clip(0.5 - direction * 0.005 * idx, 0, 1)  # decreasing if direction = 1
    use = np.full(100, 0.3)
    scores = {a: {"index": idx, "usefulness": use, "robustness": rob} for a in "ab"}
    rows = features.spectrum_claims("toy", scores, chance=0.1, nonrobust_max=0.05)
    assert [r["finding"] for r in rows] == [1, 2]
    assert rows[0]["status"] == ("pass" if direction == 1 else "fail")
    n_nonrobust = int(np.sum(rob <= 0.05))  # usefulness 0.3 > chance everywhere
    assert rows[1]["status"] == ("pass" if n_nonrobust > 0 else "fail")
    assert f"a: {n_nonrobust}" in rows[1]["measured"]
    r = np.array([1, 2, 5, 10, 20])
    peak = np.array([0.5, 0.6, 0.7, 0.4, 0.0])
    res = {"r": r, "clean": np.full(5, 0.8), "pgd_own": peak}
    own = peak if direction == 1 else np.sort(peak)  # interior peak / monotone
    row = features.topr_claim("toy", "binary", {**res, "fgsm_own": own})
    assert row["status"] == ("pass" if direction == 1 else "fail")
    row = features.topr_claim("toy", "multiclass", {**res, "fgsm_own": peak})
    assert row["status"] == "fail"  # r = 5 has clean 0.8 and robust 0.7


def test_consistency_table_uses_the_shared_points():
    rng = np.random.default_rng(6)
    adv = {"a": rng.random((12, 30)) < 0.5, "b": rng.random((12, 8)) < 0.5}
    clean = {k: ~v for k, v in adv.items()}
    vecs = {k: np.linalg.qr(rng.normal(size=(15, 3)))[0] for k in adv}
    table = features.consistency_table(adv, clean, vecs).set_index(["arch_a", "arch_b"])
    assert (
        table.loc[("a", "a"), "n_eval"] == 30 and table.loc[("a", "b"), "n_eval"] == 8
    )
    ref = stats.spearmanr(adv["a"][:, :8].mean(1), adv["b"].mean(1)).statistic
    assert table.loc[("a", "b"), "spearman_robustness"] == pytest.approx(ref)
    assert table.loc[("a", "a"), "subspace_overlap"] == pytest.approx(1.0)
    ref_overlap = np.mean(np.cos(subspace_angles(vecs["a"], vecs["b"])) ** 2)
    assert table.loc[("b", "a"), "subspace_overlap"] == pytest.approx(ref_overlap)
