"""Loss, ℓ∞ attacks, SGD step, evaluation counts and eNTK of the supp. E networks.

PGD (Madry et al., 2018) with zero start, ``steps`` sign-gradient steps of size
``alpha``, each followed by the projection onto the eps-ball around the clean image
*and* onto the box [0, 1]; FGSM is the same attack with one step of size eps. (The
authors' script ran the default 20 PGD steps for its "FGSM" run and clipped to [0, 1]
only after the last step; see experiments.md Sec. 5 gotcha 1. Here FGSM really is
one step.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from ntkadv.typing import ApplyFn, Regime


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy of ``(n, k)`` logits against int labels ``(n,)``."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


@dataclasses.dataclass(frozen=True)
class AttackSpec:
    """An l_inf sign-gradient attack: `steps` steps of size `alpha`, budget `eps`."""

    eps: float
    alpha: float
    steps: int

    @classmethod
    def for_regime(
        cls, regime: Regime, eps: float, alpha: float, steps: int
    ) -> AttackSpec | None:
        """The training attack of a regime: None, FGSM (1 step of eps) or PGD."""
        if regime == "standard":
            return None
        if regime == "fgsm":
            return cls(eps=eps, alpha=eps, steps=1)
        if regime == "pgd":
            return cls(eps=eps, alpha=alpha, steps=steps)
        raise ValueError(f"unknown regime '{regime}'")


def pgd_path_fn(
    apply_fn: ApplyFn, spec: AttackSpec
) -> Callable[[Any, jax.Array, jax.Array], tuple[jax.Array, ...]]:
    """l_inf PGD (Madry et al., 2018) without random start, with its iterates' verdicts.

    x_0 = x;  x_{s+1} = clip_[0,1]( clip_[x-eps, x+eps]( x_s + alpha sign(grad_x L) ) )
    with L the mean cross-entropy of ``apply_fn(params, x_s)``. Because the loss is a
    mean over independent examples, each example's step uses only its own gradient.

    Every iterate x_0 = x, ..., x_S lies in the eps-ball and the box, so each is an
    adversarial example of the model: an example counts as robust only if the model
    classifies *every* iterate correctly (x_0 included). The logits of x_0..x_{S-1}
    come with the gradients, so this costs one extra forward pass (at x_S).

    Why not only x_S: a sign-gradient step need not raise the loss of a non-linear
    model, and on a linearised network (supp. E.1) it often does not. f_lin(x) =
    f(x; theta_L) + J(x; theta_L)(theta - theta_L) is discontinuous in x: J holds the
    ReLU derivatives 1[z > 0], which jump where a pre-activation z(x) crosses 0, so
    autodiff's grad_x (zero derivative of the step) misses the jumps, which dominate
    once theta has moved far from theta_L. (Measured on CNN_mega at its init, theta
    one gradient step away: autodiff directional derivative of the loss -0.10,
    central finite difference at h = 1e-3 -5.7; on the network itself -0.85 vs
    -0.84.) So PGD-5 on the lin@0 CIFAR-10 model pushed 5-10% of misclassified test
    images *into* their class (laptop log: clean 0.165, PGD 0.215 at epoch 3). With
    the every-iterate rule the robust set is a subset of the clean-correct set.

    Args:
        apply_fn: ``f(params, x) -> (n, k)`` logits.
        spec: budget, step size and number of steps.

    Returns:
        ``path(params, x, labels) -> (x_adv, clean_ok, robust_ok, last_ok)``: the
        last iterate ``(n, H, W, C)``, and bool ``(n,)``: correct at x, correct at
        every iterate, correct at the last iterate.
    """

    def loss_x(x_adv, params, labels):
        logits = apply_fn(params, x_adv)
        return cross_entropy(logits, labels), logits

    grad_x = jax.grad(loss_x, has_aux=True)

    def path(params, x, labels):
        lo = jnp.maximum(x - spec.eps, 0.0)
        hi = jnp.minimum(x + spec.eps, 1.0)
        x_adv, clean_ok, robust_ok = x, None, None
        # Unrolled on purpose: under jit on XLA:CPU a lax.fori_loop of conv
        # gradients ran 4-9x slower than the unrolled steps (measured, jax 0.4.35).
        for _ in range(spec.steps):
            grad, logits = grad_x(x_adv, params, labels)
            ok = jnp.argmax(logits, axis=-1) == labels
            clean_ok = ok if clean_ok is None else clean_ok
            robust_ok = ok if robust_ok is None else robust_ok & ok
            x_adv = jnp.clip(x_adv + spec.alpha * jnp.sign(grad), lo, hi)
        last_ok = jnp.argmax(apply_fn(params, x_adv), axis=-1) == labels
        clean_ok = last_ok if clean_ok is None else clean_ok
        robust_ok = last_ok if robust_ok is None else robust_ok & last_ok
        return x_adv, clean_ok, robust_ok, last_ok

    return path


def pgd_attack_fn(
    apply_fn: ApplyFn, spec: AttackSpec
) -> Callable[[Any, jax.Array, jax.Array], jax.Array]:
    """l_inf PGD without random start; FGSM when steps == 1 (see :func:`pgd_path_fn`).

    Returns:
        ``attack(params, x, labels) -> x_adv`` with x, x_adv of shape ``(n, H, W, C)``
        (the last iterate x_S; under jit the verdicts of the path are not computed).
    """
    path = pgd_path_fn(apply_fn, spec)

    def attack(params, x, labels):
        return path(params, x, labels)[0]

    return attack


# ------------------------------------------------------------------ train / evaluate


def train_step_fn(
    apply_fn: ApplyFn,
    optimizer: optax.GradientTransformation,
    attack: Callable | None,
):
    """One SGD step on a batch, on its adversarial version if `attack` is given.

    Returns:
        ``step(params, opt_state, x, labels) -> (params, opt_state, loss)``, where
        loss is the mean cross-entropy on the (perturbed) batch before the update.
    """

    def step(params, opt_state, x, labels):
        if attack is not None:
            x = attack(jax.lax.stop_gradient(params), x, labels)
        loss, grads = jax.value_and_grad(
            lambda p: cross_entropy(apply_fn(p, x), labels)
        )(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


def correct_counts_fn(apply_fn: ApplyFn, spec: AttackSpec):
    """``counts(params, x, labels) -> (n_correct_clean, n_robust, n_correct_last)``.

    n_robust counts the examples correct at every PGD iterate including x (the
    reported robust accuracy, a subset of the clean-correct ones, see
    :func:`pgd_path_fn`); n_correct_last counts those correct at the last iterate
    (the plain accuracy under attack, what a broken attack would inflate).
    """
    path = pgd_path_fn(apply_fn, spec)

    def counts(params, x, labels):
        _, clean_ok, robust_ok, last_ok = path(params, x, labels)
        return jnp.sum(clean_ok), jnp.sum(robust_ok), jnp.sum(last_ok)

    return counts


def ntk_fn_for(
    apply_fn: ApplyFn,
    implementation: str = "auto",
    block: int = 0,
):
    """Empirical NTK ``k(x1, x2, params) -> (n1, n2, k, k)`` of a network.

    Same layout as ``nt.empirical_ntk_fn(apply_fn, trace_axes=(), vmap_axes=0)`` in
    the authors' code; entry ``[i, j, a, b] = <d f_a(x_i)/d theta, d f_b(x_j)/d
    theta>``. Every implementation is exact (see :mod:`ntkadv.dynamics.entk`);
    'auto' is the layerwise kernel on the supp. E CNNs (7-12x faster than
    neural-tangents' implementation 1 on the MNIST CNN, 1.3x on CNN_mega).

    Args:
        apply_fn: ``f(params, x) -> (n, k)``.
        implementation: one of :data:`ntkadv.dynamics.entk.IMPLEMENTATIONS`.
        block: if positive and smaller than n, compute in ``block x block`` tiles
            with ``nt.batch`` (bounds memory; recomputes Jacobians per tile).

    Returns:
        A jitted kernel function (or an ``nt.batch`` of a jitted one).
    """
    from ntkadv.dynamics.entk import empirical_ntk_fn

    return empirical_ntk_fn(apply_fn, implementation, block)
