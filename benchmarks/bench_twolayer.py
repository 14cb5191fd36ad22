"""Benchmark: full-batch GD epochs of the two-layer net vs a flop bound (1 thread).

Rule `train_twolayer_net` trains W = W_0 + C Vᵀ in the coordinates C of the row space
of the training inputs (`ntkadv.transfer.net.gd_run_fn`): per epoch two (n, r, m)
matrix products (forward pre-activations P Cᵀ, backward δᵀ P), 4 n r m flops with
r = rank(X) <= min(n, d), instead of plain GD on W (O(n d m)). Printed:

* the time per epoch of row-space GD, against the flop bound 4 n r m / F, where F
  is the float32 matmul rate of this machine measured in the same run (one thread,
  a (n, r) @ (r, m) product in the fast layout timed alone): ratio = measured /
  bound;
* the time per evaluation (outputs and loss input-gradients of b test points, then
  three perturbed batches: `run_transfer`'s per-epoch evaluation), against its
  bound 2 b d m (1 + 1 + 3) flops / F' (F' of a (b, d) @ (d, m) product; the
  (b, d) @ (m, d)ᵀ layout of the first version ran ~3.5x slower);
* the speed-up of row-space GD over plain GD on W, whose final first layers are
  asserted equal.

The epoch and the evaluation are also printed as ``BENCH`` lines against their flop
bounds (benchmarks/_bench.py protocol). Times are CPU seconds, best of --repeats after
a warm-up, with one XLA thread as the job (scripts/_common.pin_threads;
`_bench.pin_one_core`).

Run: ``./uvw run python benchmarks/bench_twolayer.py [--quick] [--n 200] [--d 3072]
[--width 10000]`` (``--quick``: 20 epochs, one repeat).
"""

from __future__ import annotations

import argparse

from _bench import best_of, emit, matmul_rate, pin_one_core

pin_one_core()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from ntkadv.transfer import net as twolayer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--d", type=int, default=3072)
    parser.add_argument("--width", type=int, default=10000)
    parser.add_argument("--b", type=int, default=100, help="evaluation points")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--plain-width", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="20 epochs, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.repeats = 20, 1
    reps = args.repeats
    n, d, m, b = args.n, args.d, args.width, args.b
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(n, d)).astype(np.float32)
    y = rng.choice([-1.0, 1.0], size=(n, 1)).astype(np.float32)
    x_test = jnp.asarray(rng.uniform(size=(b, d)), jnp.float32)
    y_test = jnp.asarray(rng.choice([-1.0, 1.0], size=(b, 1)), jnp.float32)
    lr = 0.0025
    basis = jnp.asarray(twolayer.row_space_basis(x))
    r = basis.shape[1]
    rate = matmul_rate(n, "float32", 5, r, m)  # the GD products
    rate_eval = matmul_rate(b, "float32", 5, d, m)  # the evaluation products

    # row-space GD at the job's width, per epoch
    net = twolayer.init_net(jax.random.PRNGKey(0), d, m, 1)
    problem = twolayer.gd_problem(net, basis, x, y)
    run = jax.jit(twolayer.gd_run_fn(lr))
    c0 = jnp.zeros((m, r), jnp.float32)
    t_epoch = best_of(lambda: run(c0, problem, args.epochs).block_until_ready(), reps)
    t_epoch /= args.epochs
    bound_epoch = 4 * n * r * m / rate

    # one evaluation: outputs + loss gradients, then 3 perturbed batches
    clean = jax.jit(twolayer.outputs_and_loss_gradient, static_argnames="task")
    outputs = jax.jit(twolayer.outputs_fn_t)
    w0t = jnp.asarray(np.ascontiguousarray(np.asarray(net.w0).T))
    c1 = run(c0, problem, 5)
    x_adv = jnp.concatenate([x_test, x_test, x_test])

    def evaluate():
        f, g = clean(net, w0t, basis, c1, x_test, y_test, task="binary")
        g.block_until_ready()
        return outputs(w0t, net.a, basis, c1, x_adv).block_until_ready()

    t_eval = best_of(evaluate, reps)
    bound_eval = 2 * b * d * m * 5 / rate_eval

    # plain GD on W vs row-space GD (equal results), at a smaller width
    mp = args.plain_width
    small = twolayer.init_net(jax.random.PRNGKey(0), d, mp, 1)
    steps = 20

    @jax.jit
    def plain(w):
        def body(_, w):
            return w - lr * jax.grad(twolayer.mse_loss)(w, small.a, x, y)

        return jax.lax.fori_loop(0, steps, body, w)

    problem_small = twolayer.gd_problem(small, basis, x, y)
    cs = jnp.zeros((mp, r), jnp.float32)
    t_plain = best_of(lambda: plain(small.w0).block_until_ready(), reps)
    t_reduced = best_of(lambda: run(cs, problem_small, steps).block_until_ready(), reps)
    w_plain = np.asarray(plain(small.w0))
    w_reduced = np.asarray(
        twolayer.first_layer(small, basis, run(cs, problem_small, steps))
    )
    err = np.abs(w_plain - w_reduced).max() / np.abs(w_plain - small.w0).max()
    assert err < 1e-2, f"row-space GD differs from plain GD (relative {err:.2e})"

    print(
        f"n={n} d={d} r={r} width={m} b={b}; float32 matmul rates (1 thread, "
        f"measured in this run): {rate / 1e9:.1f} GFLOP/s at (n, r) @ (r, m), "
        f"{rate_eval / 1e9:.1f} GFLOP/s at (b, d) @ (d, m)"
    )
    print(
        f"row-space GD epoch: {t_epoch * 1e3:.2f} ms, flop bound 4nrm/F = "
        f"{bound_epoch * 1e3:.2f} ms, ratio {t_epoch / bound_epoch:.2f}"
    )
    print(
        f"evaluation (clean + gradient + 3 perturbed batches): {t_eval * 1e3:.1f} ms, "
        f"flop bound 10bdm/F = {bound_eval * 1e3:.1f} ms, ratio "
        f"{t_eval / bound_eval:.2f}"
    )
    print(
        f"plain GD on W vs row-space GD at width {mp}, {steps} epochs: "
        f"{t_plain:.3f} s vs {t_reduced:.3f} s, speed-up x{t_plain / t_reduced:.1f} "
        f"(max relative difference of W - W0: {err:.1e})"
    )
    emit(
        "transfer",
        f"two-layer GD epoch (n={n}, width {m})",
        t_epoch,
        bound_epoch,
        "4 n r m flops at the (n, r) @ (r, m) float32 matmul rate",
    )
    emit(
        "transfer",
        f"two-layer evaluation (b={b}, width {m})",
        t_eval,
        bound_eval,
        "10 b d m flops at the (b, d) @ (d, m) float32 matmul rate",
    )


if __name__ == "__main__":
    main()
