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

The job runs with one XLA thread (scripts/_common.pin_threads); so does this.

Run: uv run python benchmarks/bench_twolayer.py [--n 200] [--d 3072] [--width 10000]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "")
    + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
).strip()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from ntkadv.transfer import net as twolayer  # noqa: E402


def _time(fn, repeats: int = 3) -> float:
    fn()  # compile
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def matmul_rate(n: int, r: int, m: int) -> float:
    """float32 flop/s of a (n, r) @ (r, m) product in the fast (row-major, no
    transpose) layout (best of 5 timings of 20 products)."""
    rng = np.random.default_rng(1)
    a = jnp.asarray(rng.normal(size=(n, r)), jnp.float32)
    b = jnp.asarray(rng.normal(size=(r, m)), jnp.float32)

    @jax.jit
    def many(a, b):
        def body(i, acc):
            return acc + (a * (1.0 + i * 1e-7)) @ b

        return jax.lax.fori_loop(0, 20, body, jnp.zeros((n, m), jnp.float32))

    seconds = _time(lambda: many(a, b).block_until_ready(), 5) / 20
    return 2 * n * r * m / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--d", type=int, default=3072)
    parser.add_argument("--width", type=int, default=10000)
    parser.add_argument("--b", type=int, default=100, help="evaluation points")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--plain-width", type=int, default=1000)
    args = parser.parse_args()
    n, d, m, b = args.n, args.d, args.width, args.b
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(n, d)).astype(np.float32)
    y = rng.choice([-1.0, 1.0], size=(n, 1)).astype(np.float32)
    x_test = jnp.asarray(rng.uniform(size=(b, d)), jnp.float32)
    y_test = jnp.asarray(rng.choice([-1.0, 1.0], size=(b, 1)), jnp.float32)
    lr = 0.0025
    basis = jnp.asarray(twolayer.row_space_basis(x))
    r = basis.shape[1]
    rate = matmul_rate(n, r, m)  # the GD products
    rate_eval = matmul_rate(b, d, m)  # the evaluation products

    # row-space GD at the job's width, per epoch
    net = twolayer.init_net(jax.random.PRNGKey(0), d, m, 1)
    problem = twolayer.gd_problem(net, basis, x, y)
    run = jax.jit(twolayer.gd_run_fn(lr))
    c0 = jnp.zeros((m, r), jnp.float32)
    t_epoch = _time(lambda: run(c0, problem, args.epochs).block_until_ready())
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

    t_eval = _time(evaluate)
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
    t_plain = _time(lambda: plain(small.w0).block_until_ready())
    t_reduced = _time(lambda: run(cs, problem_small, steps).block_until_ready())
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


if __name__ == "__main__":
    main()
