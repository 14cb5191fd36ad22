"""Benchmark: full-batch GD of the two-layer net, row-space coordinates vs plain W.

Rule `train_twolayer_net` trains W = W_0 + C Vᵀ in the coordinates C of the row space
of the training inputs (`ntkadv.transfer.net.gd_run_fn`), O(n r m) per epoch with
r = rank(X) <= min(n, d), instead of plain GD on W, O(n d m). Both are timed on
random CIFAR-shaped inputs (d = 3072), the final first layers are asserted equal, and
the speed-up is printed.

Run: uv run python benchmarks/bench_twolayer.py [--n 200] [--width 2000] [--epochs 20]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from ntkadv.transfer import net as twolayer  # noqa: E402


def _time(fn, repeats: int = 3) -> float:
    fn()  # compile
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--d", type=int, default=3072)
    parser.add_argument("--width", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(args.n, args.d)).astype(np.float32)
    y = rng.choice([-1.0, 1.0], size=(args.n, 1)).astype(np.float32)
    net = twolayer.init_net(jax.random.PRNGKey(0), args.d, args.width, 1)
    lr = 0.0025

    @jax.jit
    def plain(w):
        def body(_, w):
            return w - lr * jax.grad(twolayer.mse_loss)(w, net.a, x, y)

        return jax.lax.fori_loop(0, args.epochs, body, w)

    basis = jnp.asarray(twolayer.row_space_basis(x))
    problem = twolayer.gd_problem(net, basis, x, y)
    run = jax.jit(twolayer.gd_run_fn(lr))
    c0 = jnp.zeros((args.width, basis.shape[1]), jnp.float32)

    def reduced():
        return run(c0, problem, args.epochs).block_until_ready()

    t_plain = _time(lambda: plain(net.w0).block_until_ready())
    t_reduced = _time(reduced)
    w_plain = np.asarray(plain(net.w0))
    w_reduced = np.asarray(twolayer.first_layer(net, basis, reduced()))
    err = np.abs(w_plain - w_reduced).max() / np.abs(w_plain - net.w0).max()
    assert err < 1e-2, f"row-space GD differs from plain GD (relative {err:.2e})"
    print(
        f"n={args.n} d={args.d} r={basis.shape[1]} width={args.width} "
        f"epochs={args.epochs}: plain GD on W {t_plain:.3f} s, row-space GD "
        f"{t_reduced:.3f} s, speed-up x{t_plain / t_reduced:.1f} "
        f"(max relative difference of W - W0: {err:.1e})"
    )


if __name__ == "__main__":
    main()
