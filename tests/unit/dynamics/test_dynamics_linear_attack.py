"""The lin@0 finding: PGD on a linearised network raised accuracy (supp. E.1).

f_lin(x) = f(x; theta_L) + J(x; theta_L)(theta - theta_L) is discontinuous in x (J
holds ReLU steps 1[z > 0]), so autodiff's input gradient misses its jumps and a
sign step can push a misclassified point into its class. The evaluation now counts
a point robust only if every PGD iterate (x included) is correct
(`ntkadv.dynamics.steps.pgd_path_fn`); the shared check
`ntkadv.attacks.checks.check_attack_accuracy` fails a job whose attack raises
accuracy.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkadv.attacks.checks import AttackCheckError, check_attack_accuracy
from ntkadv.compat import import_neural_tangents
from ntkadv.dynamics.steps import (
    AttackSpec,
    correct_counts_fn,
    cross_entropy,
    pgd_attack_fn,
)


def _unit(params, x):
    """Two logits (0, a relu(w x + b) + u x + c) of scalar inputs x (n, 1)."""
    z = params["a"] * jax.nn.relu(params["w"] * x + params["b"])
    z = z + params["u"] * x + params["c"]
    return jnp.concatenate([jnp.zeros_like(z), z], axis=1)


# theta_L: ReLU boundary at x = 0.5; theta - theta_L: bias +1, outer weight -2
THETA_L = {"a": 1.0, "w": 1.0, "b": -0.5, "u": -1.0, "c": 0.35}
THETA = {**THETA_L, "a": -1.0, "b": 0.5}


def _linear():
    nt = import_neural_tangents()
    f_lin = nt.linearize(_unit, jax.tree_util.tree_map(jnp.float32, THETA_L))
    return f_lin, jax.tree_util.tree_map(jnp.float32, THETA)


def test_linearised_unit_jumps_where_autodiff_sees_no_jump():
    """The independent computation: f_lin by hand, its jump at the ReLU boundary."""
    f_lin, theta = _linear()
    x = jnp.array([[0.45], [0.55]])
    # by hand: f(x; theta_L) + J (theta - theta_L) = relu(x-.5) - x + .35
    #          + (da) relu(x-.5) + a_L 1[x>.5] db  with da = -2, db = +1
    by_hand = np.maximum(x - 0.5, 0) - x + 0.35 - 2 * np.maximum(x - 0.5, 0)
    by_hand = by_hand + (np.asarray(x) > 0.5)
    np.testing.assert_allclose(f_lin(theta, x)[:, 1:], by_hand, atol=1e-6)
    # jump of size ~1 across x = 0.5 while the autodiff slope is -1 (or -2)
    left, right = (
        float(f_lin(theta, jnp.array([[v]]))[0, 1]) for v in (0.4999, 0.5001)
    )
    assert right - left == pytest.approx(1.0, abs=1e-3)
    slope = jax.grad(lambda v: f_lin(theta, v.reshape(1, 1))[0, 1])(jnp.float32(0.45))
    assert float(slope) == pytest.approx(-1.0)


def test_pgd_on_a_linearised_model_does_not_raise_robust_accuracy():
    """Fails on the old evaluation (last iterate only: 0 clean, 1 'robust')."""
    f_lin, theta = _linear()
    x, labels = jnp.array([[0.45]]), jnp.array([1])
    spec = AttackSpec(eps=0.1, alpha=0.1, steps=1)
    # the ascent step goes up in x (loss slope > 0) and crosses the jump ...
    x_adv = pgd_attack_fn(f_lin, spec)(theta, x, labels)
    assert float(x_adv[0, 0]) == pytest.approx(0.55)
    loss = [float(cross_entropy(f_lin(theta, z), labels)) for z in (x, x_adv)]
    assert loss[1] < loss[0]
    # ... so the last iterate is correct though x is not
    clean, robust, last = correct_counts_fn(f_lin, spec)(theta, x, labels)
    assert (int(clean), int(last)) == (0, 1)
    assert int(robust) == 0 <= int(clean)
    check_attack_accuracy(float(clean), float(robust), 1, "PGD-1", "lin unit")
    with pytest.raises(AttackCheckError, match="lin unit"):
        check_attack_accuracy(float(clean), float(last), 10, "PGD-1", "lin unit")


def test_robust_counts_are_every_iterate_counts_on_a_cnn():
    """Against an independent loop over the iterates of pgd_attack_fn."""
    from ntkadv.dynamics import models

    model = models.build_model("cnn")
    f = models.apply_fn_for(model)
    params = models.init_params(model, jax.random.PRNGKey(0), (8, 8, 1))
    x = jax.random.uniform(jax.random.PRNGKey(1), (12, 8, 8, 1))
    labels = jnp.arange(12) % 10
    spec = AttackSpec(0.3, 0.1, 3)
    ok = []
    for s in range(spec.steps + 1):
        z = pgd_attack_fn(f, AttackSpec(0.3, 0.1, s))(params, x, labels) if s else x
        ok.append(np.argmax(np.asarray(f(params, z)), axis=1) == np.asarray(labels))
    clean, robust, last = correct_counts_fn(f, spec)(params, x, labels)
    assert int(clean) == ok[0].sum()
    assert int(robust) == np.logical_and.reduce(ok).sum()
    assert int(last) == ok[-1].sum()


def _record(attacked, linear):
    from types import SimpleNamespace

    metrics = {}
    for name in ("train", "test"):
        metrics |= {
            f"{name}_clean_acc": 0.165,
            f"{name}_robust_acc": 0.10,
            f"{name}_attacked_acc": attacked,
        }
    state = SimpleNamespace(lin_params={} if linear else None)
    run = SimpleNamespace(
        spec=SimpleNamespace(eval_attack=AttackSpec(0.03, 0.01, 5)),
        eval_sets={"train": (np.zeros(100), None), "test": (np.zeros(200), None)},
    )
    return SimpleNamespace(epoch=3, metrics=metrics, state=state), run


def test_epoch_check_names_the_run_of_an_attack_that_raises_accuracy():
    from ntkadv.dynamics.checkpoint import check_attacks

    where = {"dataset": "cifar10", "regime": "pgd", "seed": 0}
    record, run = _record(0.215, linear=False)
    with pytest.raises(AttackCheckError, match="cifar10, regime pgd, seed 0, epoch 3"):
        check_attacks(record, run, where)
    check_attacks(*_record(0.16, linear=False), where)
    # a linearised model: only the every-iterate (reported) accuracy is checked
    check_attacks(*_record(0.215, linear=True), where)
