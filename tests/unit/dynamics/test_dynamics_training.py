"""Tests of ntkadv.dynamics.{steps,state,training,checkpoint}: attacks, SGD step,
eNTK, determinism, resume, linearisation.

Tiny sizes (8x8 images, a few examples) keep the file fast on 2 shared cores; the
models accept any image side divisible by 4.
"""

from __future__ import annotations

import dataclasses

import chex
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ntkadv import h5io
from ntkadv.dynamics import models
from ntkadv.dynamics.checkpoint import (
    Checkpoint,
    DivergenceError,
    check_epoch,
    run_with_checkpoints,
)
from ntkadv.dynamics.measures import kernel_matrix
from ntkadv.dynamics.records import METRICS
from ntkadv.dynamics.state import flatten_tree, state_to_arrays, unflatten_tree
from ntkadv.dynamics.steps import (
    AttackSpec,
    cross_entropy,
    ntk_fn_for,
    pgd_attack_fn,
    train_step_fn,
)
from ntkadv.dynamics.training import DynamicsRun, RunSpec, prefix_subsets

SHAPES = {"cnn": (8, 8, 1), "cnn_mega": (8, 8, 3)}


def _setup(name="cnn", n=6, seed=0):
    model = models.build_model(name)
    f = models.apply_fn_for(model)
    params = models.init_params(model, jax.random.PRNGKey(seed), SHAPES[name])
    x = jax.random.uniform(jax.random.PRNGKey(seed + 1), (n, *SHAPES[name]))
    x = x.astype(jnp.float32)
    labels = jnp.arange(n, dtype=jnp.int32) % 10
    return f, params, x, labels


def _loss_per_example(f, params, x, labels):
    logits = f(params, x)
    return -jax.nn.log_softmax(logits)[jnp.arange(len(labels)), labels]


# ------------------------------------------------------------------ attacks


def test_cross_entropy_matches_log_softmax():
    f, params, x, labels = _setup()
    brute = jnp.mean(_loss_per_example(f, params, x, labels))
    assert cross_entropy(f(params, x), labels) == pytest.approx(float(brute))


@pytest.mark.parametrize("name", ["cnn", "cnn_mega"])
@pytest.mark.parametrize("eps", [0.05, 0.3])
def test_fgsm_regime_is_one_step_of_size_eps(eps, name):
    f, params, x, labels = _setup(name)
    spec = AttackSpec.for_regime("fgsm", eps=eps, alpha=0.01, steps=20)
    assert spec == AttackSpec(eps=eps, alpha=eps, steps=1)
    x_adv = pgd_attack_fn(f, spec)(params, x, labels)
    # independent: per-example loss gradient, one signed step, box clip
    g = jax.grad(lambda z: jnp.sum(_loss_per_example(f, params, z, labels)))(x)
    np.testing.assert_array_equal(
        np.asarray(x_adv), np.clip(np.asarray(x + eps * jnp.sign(g)), 0.0, 1.0)
    )
    inside = (x > eps) & (x < 1 - eps) & (g != 0)
    np.testing.assert_allclose(
        np.abs(np.asarray(x_adv - x))[np.asarray(inside)], eps, rtol=1e-5
    )


@pytest.mark.parametrize("steps", [1, 5])
@pytest.mark.parametrize("eps,alpha", [(0.3, 0.1), (8 / 255, 2 / 255)])
def test_pgd_stays_in_ball_and_box_and_raises_loss(eps, alpha, steps):
    f, params, x, labels = _setup("cnn", n=8)
    x_adv = pgd_attack_fn(f, AttackSpec(eps, alpha, steps))(params, x, labels)
    assert float(jnp.max(jnp.abs(x_adv - x))) <= eps + 1e-6
    assert float(jnp.min(x_adv)) >= 0.0 and float(jnp.max(x_adv)) <= 1.0
    before = _loss_per_example(f, params, x, labels)
    after = _loss_per_example(f, params, x_adv, labels)
    assert float(jnp.mean(after)) > float(jnp.mean(before))


def test_pgd_matches_a_per_example_loop():
    """Batched PGD equals running each example alone (no cross-talk via the mean)."""
    f, params, x, labels = _setup("cnn", n=4)
    spec = AttackSpec(0.3, 0.1, 3)
    batched = pgd_attack_fn(f, spec)(params, x, labels)
    for i in range(len(x)):
        xi, yi = x[i : i + 1], labels[i : i + 1]
        z = xi
        for _ in range(spec.steps):
            g = jax.grad(lambda u, y=yi: jnp.sum(_loss_per_example(f, params, u, y)))(z)
            z = jnp.clip(
                jnp.clip(z + spec.alpha * jnp.sign(g), xi - 0.3, xi + 0.3), 0, 1
            )
        np.testing.assert_allclose(batched[i : i + 1], z, atol=1e-6)


def test_standard_regime_has_no_attack():
    assert AttackSpec.for_regime("standard", 0.3, 0.1, 20) is None
    assert AttackSpec.for_regime("pgd", 0.3, 0.1, 20) == AttackSpec(0.3, 0.1, 20)
    with pytest.raises(ValueError):
        AttackSpec.for_regime("trades", 0.3, 0.1, 20)


# ------------------------------------------------------------------ SGD step


@pytest.mark.parametrize("adversarial", [False, True])
def test_train_step_is_plain_sgd(adversarial):
    f, params, x, labels = _setup()
    opt = optax.sgd(0.05)
    attack = pgd_attack_fn(f, AttackSpec(0.3, 0.1, 2)) if adversarial else None
    step = jax.jit(train_step_fn(f, opt, attack))
    new, _, loss = step(params, opt.init(params), x, labels)
    x_used = attack(params, x, labels) if adversarial else x
    grads = jax.grad(lambda p: jnp.mean(_loss_per_example(f, p, x_used, labels)))(
        params
    )
    expected = jax.tree_util.tree_map(lambda p, g: p - 0.05 * g, params, grads)
    chex.assert_trees_all_close(new, expected, rtol=1e-5, atol=1e-6)
    assert float(loss) == pytest.approx(
        float(jnp.mean(_loss_per_example(f, params, x_used, labels))), rel=1e-5
    )


# ------------------------------------------------------------------ empirical NTK


@pytest.mark.parametrize(
    "name,implementation",
    [
        ("cnn", "jacobian_contraction"),
        ("cnn", "ntk_vector_products"),
        ("cnn_mega", "jacobian_contraction"),
    ],
)
def test_entk_equals_brute_force_jacobian_gram(name, implementation):
    """kB x kB eNTK matrix = J J^T, J = d vec(f^T)/d theta (rows a*B + i)."""
    f, params, x, _ = _setup(name, n=3)
    params = jax.tree_util.tree_map(lambda p: p.astype(jnp.float64), params)
    x = x.astype(jnp.float64)
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    jac = jax.jacobian(lambda w: f(unravel(w), x).T.reshape(-1))(flat)
    ntk = ntk_fn_for(f, implementation)(x, None, params)
    chex.assert_shape(ntk, (3, 3, 10, 10))
    np.testing.assert_allclose(kernel_matrix(np.asarray(ntk)), jac @ jac.T, rtol=1e-8)
    # the authors' transpose [3,1,2,0] equals the plain (a, i) x (b, j) layout
    plain = np.asarray(ntk).transpose(2, 0, 3, 1).reshape(30, 30)
    np.testing.assert_allclose(kernel_matrix(np.asarray(ntk)), plain, rtol=1e-10)


def test_blocked_entk_equals_unblocked():
    f, params, x, _ = _setup("cnn", n=4)
    full = ntk_fn_for(f)(x, None, params)
    tiled = ntk_fn_for(f, block=2)(x, None, params)
    np.testing.assert_allclose(tiled, full, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ whole runs


def _data(n=12, m=6, name="cnn", seed=0):
    rng = np.random.default_rng(seed)
    shape = SHAPES[name]
    return {
        "x_train": rng.uniform(size=(n, *shape)).astype(np.float32),
        "labels_train": rng.integers(0, 10, n),
        "x_eval_train": rng.uniform(size=(m, *shape)).astype(np.float32),
        "labels_eval_train": rng.integers(0, 10, m),
        "x_eval_test": rng.uniform(size=(m, *shape)).astype(np.float32),
        "labels_eval_test": rng.integers(0, 10, m),
    }


def _spec(**kw):
    base = {
        "model": "cnn",
        "num_classes": 10,
        "seed": 0,
        "learning_rate": 0.05,
        "batch_size": 4,
        "epochs": 3,
        "train_attack": AttackSpec(0.3, 0.1, 2),
        "eval_attack": AttackSpec(0.3, 0.1, 2),
        "kernel_batch": 2,
        "eval_batch": 4,
    }
    return RunSpec(**(base | kw))


def _collect(run, state=None):
    return list(run.epochs(state))


@pytest.mark.parametrize("kernel_inputs", ["clean", "pgd"])
def test_run_is_deterministic_given_the_seed(kernel_inputs):
    spec = _spec(kernel_inputs=kernel_inputs)
    a = _collect(DynamicsRun(spec, **_data()))
    b = _collect(DynamicsRun(spec, **_data()))
    assert [r.epoch for r in a] == [0, 1, 2, 3]
    for ra, rb in zip(a, b, strict=True):
        chex.assert_shape(ra.kernel, (20, 20))
        np.testing.assert_array_equal(ra.kernel, rb.kernel)
        chex.assert_trees_all_equal(ra.state.params, rb.state.params)
    # training moved the kernel; another seed gives another initial kernel
    assert not np.array_equal(a[0].kernel, a[-1].kernel)
    c = _collect(DynamicsRun(dataclasses.replace(spec, seed=1, epochs=0), **_data()))
    assert not np.array_equal(a[0].kernel, c[0].kernel)


def test_kernel_inputs_pgd_uses_adversarial_batch_after_epoch_0():
    data = _data()
    clean = _collect(DynamicsRun(_spec(kernel_inputs="clean"), **data))
    pgd = _collect(DynamicsRun(_spec(kernel_inputs="pgd"), **data))
    np.testing.assert_array_equal(clean[0].kernel, pgd[0].kernel)  # epoch 0: clean
    assert not np.allclose(clean[2].kernel, pgd[2].kernel)
    chex.assert_trees_all_equal(clean[2].state.params, pgd[2].state.params)


def test_state_round_trip_through_hdf5(tmp_path):
    run = DynamicsRun(_spec(), **_data())
    state = _collect(run)[1].state
    h5io.write(tmp_path / "s.h5", state_to_arrays(state))
    back = run.state_from_arrays(h5io.read(tmp_path / "s.h5"))
    assert back.epoch == state.epoch and back.lin_params is None
    chex.assert_trees_all_equal(back.params, state.params)


def test_flatten_tree_round_trip_is_exact():
    _, params, _, _ = _setup("cnn_mega")
    tree = {"params": params, "step": (jnp.int32(3), [jnp.zeros(2, jnp.float64)])}
    flat = flatten_tree(tree, "s")
    assert "s.params.Conv_0.kernel" in flat and "s.step.1.0" in flat
    assert all(isinstance(v, np.ndarray) for v in flat.values())
    back = unflatten_tree(flat, tree, "s")
    chex.assert_trees_all_equal(back, tree)
    chex.assert_trees_all_equal_dtypes(back, tree)


def _killed_after_epoch_1(run, ckpt):
    """Checkpoint a run's epochs 0 and 1, then stop as if the job had been killed."""
    history = []
    for rec in run.epochs():
        history.append(rec.metrics)
        ckpt.save(rec, history)
        if rec.epoch == 1:
            break


@pytest.mark.parametrize("lin_epoch", [None, 1])
def test_resume_after_kill_equals_uninterrupted_run(tmp_path, lin_epoch):
    import logging

    log = logging.getLogger("test")
    spec = _spec(lin_epoch=lin_epoch, kernel_batch=0 if lin_epoch is not None else 2)
    data = _data()
    fp = spec.fingerprint(data["x_train"])
    run_with_checkpoints(
        DynamicsRun(spec, **data), tmp_path / "a.h5", tmp_path / "ca", {}, log, fp
    )
    _killed_after_epoch_1(
        DynamicsRun(spec, **data), Checkpoint(tmp_path / "cb", fp, log)
    )
    run_with_checkpoints(
        DynamicsRun(spec, **data), tmp_path / "b.h5", tmp_path / "cb", {}, log, fp
    )
    a, b = h5io.read(tmp_path / "a.h5"), h5io.read(tmp_path / "b.h5")
    assert sorted(a) == sorted(b)
    assert {*METRICS, "epoch"} <= set(a)
    np.testing.assert_array_equal(a["epoch"], np.arange(spec.epochs + 1))
    for key in a:
        if key != "seconds":
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert not (tmp_path / "cb").exists()  # checkpoint removed on success


def test_checkpoint_of_another_run_is_ignored(tmp_path):
    import logging

    log = logging.getLogger("test")
    data = _data()
    run = DynamicsRun(_spec(), **data)
    ckpt = Checkpoint(tmp_path, "fingerprint-a", log)
    rec = _collect(DynamicsRun(_spec(epochs=0), **data))[0]
    ckpt.save(rec, [rec.metrics])
    assert Checkpoint(tmp_path, "fingerprint-b", log).load(run) == (None, [])
    state, history = Checkpoint(tmp_path, "fingerprint-a", log).load(run)
    assert state.epoch == 0 and len(history) == 1


def test_linearized_run_matches_pgd_run_until_lin_epoch_then_is_linear():
    data = _data()
    plain = _collect(DynamicsRun(_spec(kernel_batch=0), **data))
    lin = _collect(DynamicsRun(_spec(kernel_batch=0, lin_epoch=1), **data))
    chex.assert_trees_all_equal(plain[1].state.params, lin[1].state.params)
    assert lin[1].state.lin_params is not None
    assert not np.allclose(
        plain[3].state.params["Conv_0"]["kernel"],
        lin[3].state.params["Conv_0"]["kernel"],
    )
    # the trained model is f(theta_L) + J(theta_L)(theta - theta_L): check by jvp
    run = DynamicsRun(_spec(kernel_batch=0, lin_epoch=1), **data)
    state = lin[3].state
    theta_l, theta = state.lin_params, state.params
    x = jnp.asarray(data["x_eval_test"])
    delta = jax.tree_util.tree_map(lambda a, b: a - b, theta, theta_l)
    f0, jvp = jax.jvp(lambda p: run.apply_fn(p, x), (theta_l,), (delta,))
    logits = run._functions(state)["logits"](theta, x)
    np.testing.assert_allclose(logits, f0 + jvp, rtol=1e-4, atol=1e-6)
    assert not np.allclose(logits, run.apply_fn(theta, x), atol=1e-6)


def test_prefix_subsets_and_size_check():
    data = {
        "x_train": np.arange(10)[:, None],
        "labels_train": np.arange(10),
        "x_test": np.arange(5)[:, None],
        "labels_test": np.arange(5),
    }
    sub = prefix_subsets(data, 6, 3, None)
    np.testing.assert_array_equal(sub["labels_train"], np.arange(6))
    np.testing.assert_array_equal(sub["labels_eval_train"], np.arange(3))
    np.testing.assert_array_equal(sub["labels_eval_test"], np.arange(5))
    with pytest.raises(ValueError, match="data file has 10"):
        prefix_subsets(data, 11, None, None)


def test_run_rejects_inconsistent_sizes():
    data = _data(n=12)
    with pytest.raises(ValueError, match="multiple of ntk_block"):
        DynamicsRun(_spec(kernel_batch=3, ntk_block=2), **data)
    with pytest.raises(ValueError, match="batch_size"):
        DynamicsRun(_spec(batch_size=13), **data)


# ------------------------------------------------------------------ hardening


def _log():
    import logging

    return logging.getLogger("test")


def test_diverging_learning_rate_fails_naming_where_and_writes_nothing(tmp_path):
    spec = _spec(learning_rate=1e8, epochs=3)
    data = _data()
    run = DynamicsRun(spec, **data)
    where = {"dataset": "mnist", "regime": "pgd", "seed": 0}
    key = "dynamics.datasets.mnist.learning_rate"
    with pytest.raises(DivergenceError) as err:
        run_with_checkpoints(
            run,
            tmp_path / "run.h5",
            tmp_path / "ck",
            {},
            _log(),
            "fp",
            where=where,
            lr_key=key,
        )
    msg = str(err.value)
    assert "dataset mnist" in msg and "regime pgd" in msg and "epoch" in msg
    assert key in msg
    assert not (tmp_path / "run.h5").exists()


def test_check_epoch_accepts_a_healthy_epoch_and_rejects_nan_params():
    run = DynamicsRun(_spec(epochs=1), **_data())
    rec = _collect(run)[1]
    check_epoch(rec, run, {}, "k")  # no error
    bad = jax.tree_util.tree_map(lambda a: a * jnp.nan, rec.state.params)
    rec_bad = dataclasses.replace(rec, state=dataclasses.replace(rec.state, params=bad))
    with pytest.raises(DivergenceError, match="non-finite"):
        check_epoch(rec_bad, run, {}, "k")


def test_truncated_checkpoint_is_discarded_and_training_restarts(tmp_path):
    spec = _spec(epochs=2)
    data = _data()
    ckpt = Checkpoint(tmp_path / "ck", "fp", _log())
    _killed_after_epoch_1(DynamicsRun(spec, **data), ckpt)
    raw = ckpt.state_path.read_bytes()
    ckpt.state_path.write_bytes(raw[: len(raw) // 2])  # truncated by a crash
    assert ckpt.load(DynamicsRun(spec, **data)) == (None, [])
    assert not ckpt.dir.exists()
    run_with_checkpoints(
        DynamicsRun(spec, **data), tmp_path / "a.h5", tmp_path / "ck", {}, _log(), "fp"
    )
    run_with_checkpoints(
        DynamicsRun(spec, **data), tmp_path / "b.h5", tmp_path / "cb", {}, _log(), "fp"
    )
    a, b = h5io.read(tmp_path / "a.h5"), h5io.read(tmp_path / "b.h5")
    np.testing.assert_array_equal(a["test_clean_acc"], b["test_clean_acc"])
    np.testing.assert_array_equal(a["kernels"], b["kernels"])


def test_fingerprint_covers_labels_and_code_version(monkeypatch):
    data = _data()
    spec = _spec()
    fp = spec.fingerprint(data["x_train"], data["labels_train"])
    other = spec.fingerprint(data["x_train"], (data["labels_train"] + 1) % 10)
    assert fp != other
    from ntkadv.dynamics import training

    monkeypatch.setattr(training, "code_version", lambda: "another version")
    assert spec.fingerprint(data["x_train"], data["labels_train"]) != fp


@pytest.mark.parametrize("lin_epoch", [0, 2])
def test_linearized_run_from_pgd_snapshot_equals_retraining(tmp_path, lin_epoch):
    """A linearised run branching off the PGD run's snapshot reproduces the
    linearised run trained from scratch (same metrics, same final parameters)."""
    from ntkadv.dynamics.state import unflatten_tree as unflat

    data = _data()
    pgd = _spec(epochs=3)
    run_with_checkpoints(
        DynamicsRun(pgd, **data),
        tmp_path / "pgd.h5",
        tmp_path / "c0",
        {},
        _log(),
        "a",
        snapshots=[lin_epoch],
    )
    lin = _spec(epochs=3, kernel_batch=0, lin_epoch=lin_epoch)
    run_with_checkpoints(
        DynamicsRun(lin, **data),
        tmp_path / "scratch.h5",
        tmp_path / "c1",
        {},
        _log(),
        "b",
    )
    src = h5io.read(tmp_path / "pgd.h5")
    run = DynamicsRun(lin, **data)
    params = unflat(src, run.init_state().params, f"snapshot.{lin_epoch}.params")
    history = [{m: float(src[m][t]) for m in METRICS} for t in range(lin_epoch + 1)]
    run_with_checkpoints(
        run,
        tmp_path / "branch.h5",
        tmp_path / "c2",
        {},
        _log(),
        "c",
        start=(run.branch_state(params, lin_epoch), history),
    )
    a, b = h5io.read(tmp_path / "scratch.h5"), h5io.read(tmp_path / "branch.h5")
    assert sorted(a) == sorted(b)
    for key in a:
        if key != "seconds":
            np.testing.assert_allclose(
                a[key], b[key], rtol=1e-5, atol=1e-6, err_msg=key
            )
