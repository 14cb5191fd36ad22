"""PGD on XLA:CPU: Python-unrolled steps (ntkadv.dynamics.steps) vs a lax.fori_loop.

Run: uv run python benchmarks/bench_pgd_unroll.py
Prints the time of a jitted PGD-5 attack on the supp. E MNIST CNN both ways and the
ratio fori_loop / unrolled (measured 4-9x on 2 cores with jax 0.4.35, which is why
ntkadv.steps.pgd_attack_fn unrolls its steps).
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from ntkadv.dynamics import models, steps  # noqa: E402


def fori_pgd(f, spec):
    """The same attack as steps.pgd_attack_fn, with the steps in a fori_loop."""

    def attack(params, x, labels):
        def loss(z):
            return steps.cross_entropy(f(params, z), labels)

        lo, hi = jnp.maximum(x - spec.eps, 0), jnp.minimum(x + spec.eps, 1)

        def body(_, z):
            return jnp.clip(z + spec.alpha * jnp.sign(jax.grad(loss)(z)), lo, hi)

        return jax.lax.fori_loop(0, spec.steps, body, x)

    return attack


def timed(fn, *args, reps=5):
    jax.block_until_ready(fn(*args))  # compile
    start = time.perf_counter()
    for _ in range(reps):
        jax.block_until_ready(fn(*args))
    return (time.perf_counter() - start) / reps


def main():
    model = models.build_model("cnn")
    f = models.apply_fn_for(model)
    params = models.init_params(model, jax.random.PRNGKey(0), (28, 28, 1))
    x = jax.random.uniform(jax.random.PRNGKey(1), (64, 28, 28, 1))
    labels = jnp.arange(64) % 10
    spec = steps.AttackSpec(eps=0.3, alpha=0.1, steps=5)
    unrolled = timed(jax.jit(steps.pgd_attack_fn(f, spec)), params, x, labels)
    looped = timed(jax.jit(fori_pgd(f, spec)), params, x, labels)
    print(
        f"PGD-5, 64 MNIST images: unrolled {unrolled:.3f} s, fori_loop {looped:.3f} s"
    )
    print(f"ratio fori_loop / unrolled = {looped / unrolled:.2f}")


if __name__ == "__main__":
    main()
