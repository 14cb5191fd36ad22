"""Benchmark: one `train_twolayer_net` job (GD epochs, evaluations) vs flop bounds.

Rule `train_twolayer_net` trains W = W_0 + C Vᵀ (V (d, r) a basis of the row space
of the training inputs) by full-batch GD in dual coordinates C = αᵀ P, P = X V
(`ntkadv.transfer.net.gd_dual_run_fn`): per epoch ONE (n, n) @ (n, m) product
z = z0 + G α, 2 n² m flops (r = n here). The row-space loop it replaced
(`gd_run_fn`: forward P Cᵀ and backward Δᵀ P, 4 n r m flops) is timed beside it.
Printed:

* the time per epoch of dual GD (the job's loop), against its flop bound 2 n² m / F,
  F the float32 rate of a lone (n, n) @ (n, m) product in the fast layout measured in
  the same run (one thread); and of row-space GD against 4 n r m / F_r;
* the time per evaluation as `run_transfer` does it (outputs and loss input-gradients
  of b test points from their cached x W_0ᵀ, then the own- and NTK-FGSM batches, 2b
  points, and the random-sign batch from its cached x W_0ᵀ): its three (b, d, m)
  products (the backward (b, m) @ (m, d), two forward (b, d) @ (d, m)), 6 b d m / F',
  F' of a (b, d) @ (d, m) product (the first version evaluated all five products);
* the whole `experiment.run_transfer` call of one job at the laptop shapes
  (config.yaml transfer: n = 200, b = 200 test points, 1000 epochs, 16 log-spaced
  evaluation epochs + the image/alignment epochs; CIFAR-2 d = 3072, width 10⁴) on
  synthetic data, including its XLA compilations and host work, against the sum of
  the two bounds (epochs x epoch bound + evaluations x evaluation bound);
* the speed-up of dual over row-space GD, whose coordinates are asserted equal.

The epoch, the evaluation and the job are ``BENCH`` lines against their bounds
(benchmarks/_bench.py protocol). Times are CPU seconds (best of --repeats after a
warm-up; the job once, cold), with one XLA thread as the job
(scripts/_common.pin_threads; `_bench.pin_one_core`).

Measured (2-core AMD EPYC shared with 3-5 other jobs, one thread, CPU seconds):
the real jobs of config.yaml, whole process (imports, compilation, I/O), before
(6f03b2b, seed 0, load 1-6) -> after (fce654d, mean of the 8 seeds' job logs, load
8-19): MNIST 5.3 -> 5.1 / 30.2 -> 21.3, CIFAR-2 6.8 -> 6.4 / 39.1 -> 27.3 at widths
10³ / 10⁴: one seed (4 nets) 81 -> 60 CPU-s. Phase timers in the CIFAR-2 width-10⁴
job: GD 23.1 -> 11.6 s, evaluations 13.7 -> 10.0 s, set-up (basis, x W_0ᵀ, W_0ᵀ)
1.8-2.7 s, reading / writing 0.2 s. Every array of the run files equal to float32
tolerance: in float64 the new loop equals the old to 2e-14 (relative); in float32
the old and new runs differ less than the old code under XLA's thunk runtime
differs from itself under the legacy one (CIFAR-2 width 10³: 1 vs 8 flipped
correct_own of 3,200, grad_image 3.5e-2 vs 3.2e-2 of its max: relu kinks near 0).

Run: ``./uvw run python benchmarks/bench_twolayer.py [--quick] [--n 200] [--d 3072]
[--width 10000]`` (``--quick``: 20 epochs per timing, one repeat, a job of 100
epochs at 8 evaluation epochs).
"""

from __future__ import annotations

import argparse
import time

from _bench import best_of, emit, matmul_rate, pin_one_core

pin_one_core()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from ntkadv.transfer import experiment  # noqa: E402
from ntkadv.transfer import net as twolayer  # noqa: E402


def synthetic(n: int, d: int, b: int, seed: int = 0):
    """Linearly separable ±1 data in [0, 1]^d: (x (n, d), y (n, 1), x_test, y_test)."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=d)
    x = rng.uniform(size=(n + b, d))
    y = np.sign((x - 0.5) @ w)[:, None]
    return x[:n], y[:n], x[n:], y[n:]


def job(n, d, m, b, epochs, n_eval, lr) -> tuple[float, int]:
    """CPU seconds of one cold `run_transfer` call and its number of evaluations."""
    x, y, x_test, y_test = synthetic(n, d, b)
    ep = experiment.transfer_epochs(epochs, n_eval, (10, 100, epochs), epochs)
    rng = np.random.default_rng(1)
    reference = {
        "epoch": ep,
        "loss_grad": rng.normal(size=(ep.size, b, d)),
        "f": rng.normal(size=(ep.size, b, 1)),
        "random_signs": rng.choice([-1.0, 1.0], size=(b, d)),
    }
    net = twolayer.init_net(jax.random.PRNGKey(0), d, m, 1)
    start = time.process_time()
    experiment.run_transfer(
        net, x, y, x_test, y_test, "binary", lr, reference, 8 / 255, 0, (10, 100)
    )
    return time.process_time() - start, int(ep.size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--d", type=int, default=3072)
    parser.add_argument("--width", type=int, default=10000)
    parser.add_argument("--b", type=int, default=200, help="evaluation points")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--job-epochs", type=int, default=1000)
    parser.add_argument("--n-eval", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="see the docstring")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.repeats, args.job_epochs, args.n_eval = 20, 1, 100, 8
    reps = args.repeats
    n, d, m, b = args.n, args.d, args.width, args.b
    lr = 0.002  # stable on uniform [0, 1] pixels (CIFAR-2 uses 0.004, config.yaml)
    x, y, x_test, y_test = (jnp.asarray(v, jnp.float32) for v in synthetic(n, d, b))
    basis = jnp.asarray(twolayer.row_space_basis(np.asarray(x)))
    r = basis.shape[1]
    rate = matmul_rate(n, "float32", 5, n, m)  # the dual product G @ alpha
    rate_r = matmul_rate(n, "float32", 5, r, m)  # the row-space products
    rate_eval = matmul_rate(b, "float32", 5, d, m)  # the evaluation products

    # GD epochs at the job's width: dual (the job's loop) and row-space (before)
    net = twolayer.init_net(jax.random.PRNGKey(0), d, m, 1)
    problem = twolayer.gd_problem(net, basis, x, y)
    gram = twolayer.dual_gram(problem)
    dual = jax.jit(twolayer.gd_dual_run_fn(lr))
    run = jax.jit(twolayer.gd_run_fn(lr))
    a0 = jnp.zeros((n, m), jnp.float32)
    c0 = jnp.zeros((m, r), jnp.float32)
    steps = args.epochs
    t_dual = best_of(lambda: dual(a0, problem, gram, steps).block_until_ready(), reps)
    t_row = best_of(lambda: run(c0, problem, steps).block_until_ready(), reps)
    t_dual, t_row = t_dual / steps, t_row / steps
    bound_dual = 2 * n * n * m / rate
    bound_row = 4 * n * r * m / rate_r
    c_row = np.asarray(run(c0, problem, steps))
    c_dual = np.asarray(twolayer.coordinates(dual(a0, problem, gram, steps), problem))
    err = np.abs(c_dual - c_row).max() / np.abs(c_row).max()
    assert err < 1e-3, f"dual GD differs from row-space GD (relative {err:.2e})"

    # one evaluation as run_transfer does it (cached x W0ᵀ of the fixed inputs)
    clean = jax.jit(twolayer.outputs_and_loss_gradient, static_argnames="task")
    outputs = jax.jit(twolayer.outputs_fn_t)
    w0t = jnp.asarray(np.ascontiguousarray(np.asarray(net.w0).T))
    c1 = twolayer.coordinates(dual(a0, problem, gram, 5), problem)
    z0_test = x_test @ w0t
    x_adv = jnp.concatenate([x_test, x_test])

    def evaluate():
        f, g = clean(net, w0t, basis, c1, x_test, y_test, task="binary", z0=z0_test)
        g.block_until_ready()
        outputs(w0t, net.a, basis, c1, x_adv).block_until_ready()
        return outputs(w0t, net.a, basis, c1, x_test, z0_test).block_until_ready()

    t_eval = best_of(evaluate, reps)
    bound_eval = 2 * b * d * m * 3 / rate_eval

    t_job, n_evals = job(n, d, m, b, args.job_epochs, args.n_eval, lr)
    bound_job = args.job_epochs * bound_dual + n_evals * bound_eval

    print(
        f"n={n} d={d} r={r} width={m} b={b}; float32 matmul rates (1 thread, "
        f"measured in this run): {rate / 1e9:.1f} GFLOP/s at (n, n) @ (n, m), "
        f"{rate_r / 1e9:.1f} at (n, r) @ (r, m), {rate_eval / 1e9:.1f} at "
        f"(b, d) @ (d, m)"
    )
    print(
        f"dual GD epoch (the job's): {t_dual * 1e3:.2f} ms, bound 2n²m/F = "
        f"{bound_dual * 1e3:.2f} ms, ratio {t_dual / bound_dual:.2f}; row-space GD "
        f"epoch (before): {t_row * 1e3:.2f} ms, bound 4nrm/F = {bound_row * 1e3:.2f} "
        f"ms, ratio {t_row / bound_row:.2f}; speed-up x{t_row / t_dual:.2f} (max "
        f"relative difference of C after {steps} epochs: {err:.1e})"
    )
    print(
        f"evaluation (cached test / random-sign x W0ᵀ, gradient, 2 attacked "
        f"batches): {t_eval * 1e3:.1f} ms, bound 6bdm/F' = {bound_eval * 1e3:.1f} ms, "
        f"ratio {t_eval / bound_eval:.2f}"
    )
    print(
        f"whole run_transfer ({args.job_epochs} epochs, {n_evals} evaluations, "
        f"compilation included): {t_job:.2f} s, bound {bound_job:.2f} s, ratio "
        f"{t_job / bound_job:.2f}"
    )
    emit(
        "transfer",
        f"two-layer GD epoch (n={n}, width {m})",
        t_dual,
        bound_dual,
        "2 n² m flops at the (n, n) @ (n, m) float32 matmul rate",
    )
    emit(
        "transfer",
        f"two-layer evaluation (b={b}, width {m})",
        t_eval,
        bound_eval,
        "6 b d m flops at the (b, d) @ (d, m) float32 matmul rate",
    )
    emit(
        "transfer",
        f"two-layer job ({args.job_epochs} epochs, {n_evals} evaluations, width {m})",
        t_job,
        bound_job,
        "epochs x epoch bound + evaluations x evaluation bound",
    )


if __name__ == "__main__":
    main()
