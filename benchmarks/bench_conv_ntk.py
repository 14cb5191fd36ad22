"""Benchmark the direct CONV NTK (`ntkadv.kernels.conv`) against neural-tangents.

1. XLA thread pinning: child processes run a float64 matmul and a large
   elementwise arctan2 under different environments and report CPU time / wall
   time. On jax 0.4.35 the project's ``XLA_FLAGS="--xla_cpu_multi_thread_eigen=false
   intra_op_parallelism_threads=1"`` does not pin XLA:CPU to one thread (the
   thunk runtime's intra-op pool ignores the first flag; the second is no XLA flag
   and is silently dropped after a ``--`` flag), while ``PJRT_NPROC=1`` (read by
   the CPU client when it creates its thread pools) does. This process pins with
   both, set before jax is imported, and prints CPU / wall for every timing.
2. Kernel blocks: neural-tangents' ``kernel_fn(x1, x2, 'ntk')``
   (`kernels.kernel_fn_from_spec`) vs `conv_ntk.conv_ntk_fn`, both jitted, best
   of --repeats after a warm-up, on n x n float64 blocks of CIFAR- and
   MNIST-shaped uniform images, CONV1 and CONV2. Printed: time, speed-up, max
   relative difference (max |a − b| / max |a|) and each implementation's ratio
   to three lower bounds measured in this run:
   * ``madd``: madds per kernel entry x entries x the time of one float64
     multiply-add in a vectorised, cache-resident XLA loop
     (`_bench.conv_entry_madds`, `_bench.vector_madd_seconds`);
   * ``pass``: depth x the time of one fused read-modify-write pass over an
     (n1·n2·H·W) float64 array (at least one pass over the maps per layer);
   * ``flop``: bench_kernels.py's count 2·d + depth·H·W·(2 f² + 20) flops per
     entry at the measured float64 matmul rate (comparable with the Gram jobs'
     "x off their flop bound").
3. Kernel rows in the consumers' shapes (`_row_fns`): score_features' label-free
   projections (B pairs per call, training set in blocks), attack_ntk's rows
   (B rows x n) and PGD's input gradient (`ntkadv.attacks.pgd.rows_loss_gradient_fn`:
   binary for CIFAR-shaped, 10-class for MNIST-shaped inputs, as the laptop's
   cifar2 / mnist), each against the madd bound (the gradient: one forward plus
   `_bench.conv_entry_vjp_madds`), printed as BENCH lines (``--only-rows``: this
   section alone).
4. Dense input-Jacobian tiles: `jacobians.dense_tile_fn` (vmap over pairs of
   jax.grad of the pair kernel) with either kernel, r x c tiles.

Timed under the jobs' XLA:CPU settings (one thread, the legacy runtime of
`scripts/_common.pin_threads`).

Run: ``.venv/bin/python benchmarks/bench_conv_ntk.py [--blocks 50 100]
[--repeats 3] [--tile 10 100]`` (~2 min on 2 cores by default; ``--quick`` for a
smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

PROJECT_XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
if __name__ == "__main__" and "--thread-probe" not in sys.argv:
    # plus the jobs' runtime (scripts/_common.pin_threads: the legacy, non-thunk
    # XLA:CPU runtime), so that the timings are those of the rules
    # (first: the flags after the stray ``intra_op_parallelism_threads=1`` are lost)
    os.environ["XLA_FLAGS"] = (
        "--xla_cpu_use_thunk_runtime=false "
        + os.environ.get("XLA_FLAGS", "")
        + " "
        + PROJECT_XLA_FLAGS
    ).strip()
    os.environ["PJRT_NPROC"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from _bench import (  # noqa: E402
    conv_entry_madds,
    conv_entry_vjp_madds,
    emit,
    kernel_entry_flops,
    vector_madd_seconds,
)
from ntkadv.kernels import analytic as kernels  # noqa: E402
from ntkadv.kernels import conv as conv_ntk  # noqa: E402
from ntkadv.kernels import jacobians  # noqa: E402

SHAPES = {"cifar": (32, 32, 3), "mnist": (28, 28, 1)}
TASKS = {"cifar": ("binary", 1), "mnist": ("multiclass", 10)}  # cifar2, mnist


def timed(fn, *args, repeats: int) -> tuple[float, float]:
    """(best wall time, best CPU time) of `repeats` calls after a warm-up.

    With XLA pinned to one thread CPU time is the time the core spent on the
    call, unaffected by other processes taking the core away (the 2-core
    development machine is shared); the speed-ups and bound ratios use it.
    """
    jax.block_until_ready(fn(*args))
    walls, cpus = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        jax.block_until_ready(fn(*args))
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus)


def rel_diff(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(a)))


# --- 1. thread pinning ---------------------------------------------------------------


def _thread_ticks() -> dict[str, int]:
    """CPU clock ticks (user + system) of each OS thread of this process."""
    ticks = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks[tid] = int(fields[11]) + int(fields[12])  # utime, stime
    return ticks


def thread_probe() -> None:
    """Child: per workload (a matmul, a large elementwise op) CPU/wall and the
    number of threads that did >= 10% of its CPU work; prints JSON."""
    x = jnp.ones((1500, 1500))
    y = jnp.full((16, 1000, 1000), 0.3)
    out = {}
    for name, fn, arg in [
        ("matmul", jax.jit(lambda a: (a @ a).sum()), x),
        ("arctan2", jax.jit(lambda a: jnp.arctan2(a, a + 1.0).sum()), y),
    ]:
        jax.block_until_ready(fn(arg))
        before = _thread_ticks()
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in range(3):
            jax.block_until_ready(fn(arg))
        ratio = (time.process_time() - c0) / (time.perf_counter() - w0)
        delta = [t - before.get(tid, 0) for tid, t in _thread_ticks().items()]
        busy = sum(d >= 0.1 * max(sum(delta), 1) for d in delta)
        out[name] = [round(ratio, 2), busy]
    print(json.dumps(out))


def bench_threads() -> None:
    print(
        "== XLA:CPU thread pinning: CPU time / wall time (> 1: several threads; "
        "< 1: core shared with other processes), threads doing >= 10% of the work =="
    )
    base = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "PJRT_NPROC")}
    variants = [
        ("no pinning", {}),
        (f"XLA_FLAGS='{PROJECT_XLA_FLAGS}'", {"XLA_FLAGS": PROJECT_XLA_FLAGS}),
        ("PJRT_NPROC=1", {"PJRT_NPROC": "1"}),
    ]
    for name, env in variants:
        proc = subprocess.run(
            [sys.executable, __file__, "--thread-probe"],
            env={**base, **env},
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        (mm, mm_busy), (at, at_busy) = r["matmul"], r["arctan2"]
        print(
            f"  {name:80s} matmul {mm:.2f} ({mm_busy} busy)  "
            f"arctan2 {at:.2f} ({at_busy} busy)"
        )
    print(f"  (this process: XLA_FLAGS={os.environ['XLA_FLAGS']!r}, PJRT_NPROC=1)")


# --- 2. kernel blocks ----------------------------------------------------------------


def measure_bounds(repeats: int) -> dict[str, float]:
    """Machine rates: ns per vectorised madd, matmul GFLOP/s."""
    m = jnp.asarray(np.random.default_rng(0).uniform(size=(1024, 1024)))
    _, t_mm = timed(jax.jit(lambda a: a @ a), m, repeats=repeats)
    return {
        "ns_per_madd": vector_madd_seconds(repeats + 2) * 1e9,
        "matmul_gflops": 2 * 1024**3 / t_mm / 1e9,
    }


def bench_blocks(args, rates) -> list[dict]:
    print(
        f"\n== kernel blocks n x n, float64: {rates['ns_per_madd']:.3f} ns per "
        f"vectorised madd, matmul {rates['matmul_gflops']:.1f} GFLOP/s (CPU time) =="
    )
    print(
        "data  net      n | CPU ms: nt     mine  speed-up | wall ms: nt     mine  "
        "speed-up | max rel | CPU time / bound, nt mine: madd  pass  flop"
    )
    rows = []
    for data in args.datasets:
        shape = SHAPES[data]
        h, w = shape[:2]
        for depth in args.depths:
            spec = {"family": "conv", "depth": depth}
            nt_fn = jax.jit(kernels.kernel_fn_from_spec(spec, implementation="stax"))
            my_fn = jax.jit(conv_ntk.conv_ntk_fn(depth))
            for n in args.blocks:
                rng = np.random.default_rng(n)
                x1 = jnp.asarray(rng.uniform(size=(n, *shape)))
                x2 = jnp.asarray(rng.uniform(size=(n, *shape)))
                w_nt, c_nt = timed(nt_fn, x1, x2, repeats=args.repeats)
                w_me, c_me = timed(my_fn, x1, x2, repeats=args.repeats)
                err = rel_diff(nt_fn(x1, x2), my_fn(x1, x2))
                entries = n * n
                madds = conv_entry_madds(depth, shape)
                b_madd = entries * madds * rates["ns_per_madd"] * 1e-9
                maps = jnp.zeros(entries * h * w)
                one_pass = jax.jit(lambda a: a * 1.0001 + 0.5)
                b_pass = depth * timed(one_pass, maps, repeats=args.repeats)[1]
                flops = kernel_entry_flops("conv", depth, shape)
                b_flop = entries * flops / (rates["matmul_gflops"] * 1e9)
                rows.append(
                    dict(data=data, depth=depth, n=n, cpu_nt=c_nt, cpu_mine=c_me)
                )
                bounds = "  ".join(
                    f"{c_nt / b:5.1f} {c_me / b:4.1f}" for b in (b_madd, b_pass, b_flop)
                )
                what = f"CONV{depth} Gram block {n}x{n} ({data})"
                emit("kernels", what, c_me, b_madd, "madds at the vectorised rate")
                print(
                    f"{data:5s} CONV{depth} {n:4d} | {c_nt * 1e3:10.1f} "
                    f"{c_me * 1e3:8.1f} {c_nt / c_me:6.2f}x | {w_nt * 1e3:11.1f} "
                    f"{w_me * 1e3:8.1f} {w_nt / w_me:6.2f}x | {err:7.1e} | "
                    f"{' ' * 22}{bounds}",
                    flush=True,
                )
    return rows


# --- 3. kernel rows (the consumers' shapes) ----------------------------------------


def _row_fns(kernel_fn, shape, n_train: int, feat_block: int, task: str):
    """The three row computations of the consumers, jitted:

    * ``features``: `ntkadv.features.projections.pair_projection_fn` (score_features'
      label-free projections p = Θ(x_adv, X) v at perturbed points: B pairs per call,
      the training set scanned in blocks of `feat_block`), forward;
    * ``rows``: Θ(x, X) of B rows against all n training points in one call
      (`ntkadv.attacks.suite.kernel_rows_fn`, `pgd`'s final prediction), forward;
    * ``grad``: ∇ₓ Σ_b L(f_t(x_b), y_b), the input gradient of PGD's steps
      (`ntkadv.attacks.pgd.rows_loss_gradient_fn`), reverse.
    """
    from ntkadv.attacks.pgd import rows_loss_gradient_fn
    from ntkadv.features.projections import pair_projection_fn

    proj = pair_projection_fn(kernel_fn, shape)
    nb = n_train // feat_block

    def features(x0, sign_g, side, xt, v):
        d = x0.shape[1]
        xt_b = xt.reshape(nb, feat_block, d)
        return proj(x0, sign_g, side, 0.3, xt_b, v.reshape(nb, feat_block, -1))

    def rows(x, xt):
        return kernel_fn(x.reshape((x.shape[0],) + shape), xt.reshape((-1,) + shape))

    loss_grad = rows_loss_gradient_fn(kernel_fn, task, shape)

    def grad(x, xt, c, y):
        cidx = jnp.zeros(x.shape[0], dtype=int)
        return loss_grad(x, y, cidx, xt.reshape((-1,) + shape), c)

    return jax.jit(features), jax.jit(rows), jax.jit(grad)


def bench_rows(args, rates) -> None:
    n, bf, br = args.row_train, args.row_batch[0], args.row_batch[1]
    print(
        f"\n== kernel rows against n = {n} training points, float64 (score_features: "
        f"{bf} pairs per call, blocks of {args.feat_block}; attack_ntk: {br} rows per "
        "call, forward and PGD's input gradient) =="
    )
    for data in args.datasets:
        shape = SHAPES[data]
        d = int(np.prod(shape))
        rng = np.random.default_rng(2)
        xt = jnp.asarray(rng.uniform(size=(n, d)))
        x_f = jnp.asarray(rng.uniform(size=(bf, d)))
        sg = jnp.asarray(np.sign(rng.standard_normal((bf, d))))
        side = jnp.asarray(rng.choice([-1.0, 1.0], size=bf))
        v = jnp.asarray(rng.standard_normal((n, bf)) / n)
        x_r = jnp.asarray(rng.uniform(size=(br, d)))
        task, k = TASKS[data]
        c = jnp.asarray(rng.standard_normal((n, k)) / n)
        if task == "binary":
            y = jnp.asarray(rng.choice([-1.0, 1.0], size=(br, 1)))
        else:
            y = jnp.asarray(np.eye(k)[rng.integers(0, k, size=br)])
        for depth in args.depths:
            feat, rows, grad = _row_fns(
                conv_ntk.conv_ntk_fn(depth), shape, n, args.feat_block, task
            )
            madd = conv_entry_madds(depth, shape) * rates["ns_per_madd"] * 1e-9
            vjp = conv_entry_vjp_madds(depth, shape) * rates["ns_per_madd"] * 1e-9
            _, c_f = timed(feat, x_f, sg, side, xt, v, repeats=args.repeats)
            _, c_r = timed(rows, x_r, xt, repeats=args.repeats)
            _, c_g = timed(grad, x_r, xt, c, y, repeats=args.repeats)
            tag = f"CONV{depth} ({data}, n {n})"
            emit(
                "kernels",
                f"{tag} features rows {bf}x{n} forward",
                c_f,
                bf * n * madd,
                "madds at the vectorised rate",
            )
            emit(
                "kernels",
                f"{tag} attack rows {br}x{n} forward",
                c_r,
                br * n * madd,
                "madds at the vectorised rate",
            )
            emit(
                "kernels",
                f"{tag} attack rows {br}x{n} input gradient ({task})",
                c_g,
                br * n * (madd + vjp),
                "forward + backward madds at the vectorised rate",
            )
            print(
                f"  {tag}: µs per entry: features {c_f / (bf * n) * 1e6:.2f}, rows "
                f"{c_r / (br * n) * 1e6:.2f}, gradient {c_g / (br * n) * 1e6:.2f} "
                f"({c_g / c_r:.2f}x the rows)",
                flush=True,
            )


# --- 4. Jacobian tiles ---------------------------------------------------------------


def bench_tiles(args) -> None:
    r, c = args.tile
    print(
        f"\n== dense input-Jacobian tile {r} x {c} (jacobians.dense_tile_fn: vmap of "
        "jax.grad), float64 =="
    )
    for data in args.datasets:
        shape = SHAPES[data]
        rng = np.random.default_rng(1)
        x_eval = jnp.asarray(rng.uniform(size=(r, *shape)))
        x_train = jnp.asarray(rng.uniform(size=(c, *shape)))
        for depth in args.depths:
            spec = {"family": "conv", "depth": depth}
            nt_tile = jax.jit(
                jacobians.dense_tile_fn(
                    kernels.kernel_fn_from_spec(spec, implementation="stax")
                )
            )
            my_tile = jax.jit(jacobians.dense_tile_fn(conv_ntk.conv_ntk_fn(depth)))
            w_nt, c_nt = timed(nt_tile, x_eval, x_train, repeats=args.repeats)
            w_me, c_me = timed(my_tile, x_eval, x_train, repeats=args.repeats)
            err = rel_diff(nt_tile(x_eval, x_train), my_tile(x_eval, x_train))
            print(
                f"{data:5s} CONV{depth}: CPU ms nt {c_nt * 1e3:8.1f} mine "
                f"{c_me * 1e3:8.1f} ({c_nt / c_me:4.2f}x); wall ms nt "
                f"{w_nt * 1e3:8.1f} mine {w_me * 1e3:8.1f} ({w_nt / w_me:4.2f}x); "
                f"max rel {err:.1e}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, nargs="+", default=[50, 100])
    parser.add_argument("--depths", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--datasets", nargs="+", choices=sorted(SHAPES), default=["cifar", "mnist"]
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tile", type=int, nargs=2, default=[10, 100])
    parser.add_argument("--row-train", type=int, default=1000, help="rows' n")
    parser.add_argument(
        "--row-batch",
        type=int,
        nargs=2,
        default=[100, 25],
        help="pairs per score_features call, rows per attack_ntk call (laptop)",
    )
    parser.add_argument("--feat-block", type=int, default=100)
    parser.add_argument("--only-rows", action="store_true", help="section 3 only")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 repeat")
    parser.add_argument("--skip-threads", action="store_true")
    parser.add_argument("--thread-probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.thread_probe:
        thread_probe()
        return
    if args.quick:  # laptop block size, CIFAR only, no thread report
        args.blocks, args.repeats, args.datasets = [100], 2, ["cifar"]
        args.skip_threads = True
    print(f"jax {jax.__version__} on {jax.devices()[0].device_kind}, x64")
    rates = measure_bounds(args.repeats)
    if args.only_rows:
        bench_rows(args, rates)
        return
    if not args.skip_threads:
        bench_threads()
    bench_blocks(args, rates)
    bench_rows(args, rates)
    bench_tiles(args)


if __name__ == "__main__":
    main()
