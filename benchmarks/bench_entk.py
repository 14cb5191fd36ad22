"""Empirical-NTK implementations on the dynamics CNNs, against a roofline.

For the MNIST ``CNN`` (P = 824,458) at B in {10, 20, 50} and CIFAR-10 ``CNN_mega``
(P = 368,938) at B in {10, 25}, times every implementation of
:func:`dynamics.entk.empirical_ntk_fn` on ``x2=None`` (jitted, after one warm-up call,
best of `--repeats`; wall and CPU seconds), and prints

* the ratio to the first implementation of ``--impls`` ("ref"; by default
  neural-tangents' implementation 1, JACOBIAN_CONTRACTION);
* the ratio to a lower bound measured in the same run for "compute the Jacobian
  once and contract it": the ``J J^T`` GEMM of a random (10B, P) float32 matrix
  plus one forward + backward per output (a ``jax.vmap`` over the 10 one-hot
  cotangents of ``jax.vjp`` w.r.t. the parameters, batch B). ``layerwise`` can
  beat it: it never forms the Dense layers' part of J (~97% of the MNIST P);
* XLA's temporary buffers of the compiled kernel and the peak RSS increase of the
  call over the RSS before it (VmHWM reset with /proc/self/clear_refs);
* the relative Frobenius difference to the reference, and (last) the float32
  error of each implementation against a float64 evaluation at B = 10.

Times are CPU seconds of the best call (with XLA on one thread, the compute time;
unlike wall time it does not grow when other jobs share the core).

An implementation (other than the first, the reference) is skipped at a B where its
time at the previous B, scaled by B^2, exceeds ``--max-seconds``. XLA:CPU runs as in
the dynamics jobs (`_bench.pin_one_core`: one thread, the legacy CPU runtime). Each
measurement runs in a fresh process.

Per model and B, ``BENCH`` lines (benchmarks/_bench.py protocol) give the layerwise
eNTK (what the stage's default 'auto' resolves to on these CNNs) against the roofline
and against neural-tangents' implementation 1 (the best alternative, when measured).

Measured here (jax 0.4.35, XLA's thunk runtime then, 2-core Xeon shared with other
jobs; CPU s, best of 3; the full table with the roofline is in the docstring of
ntkadv/entk.py):

    model     B   impl. 1  ntk_vp  struct_der  jac_gemm  layerwise  (ratio l/1)
    cnn      10   0.76     0.81    0.080       0.78      0.060      0.08
    cnn      20   1.73     2.96    0.20        1.85      0.14       0.08
    cnn      50   6.35     -       0.55        -         0.44       0.07
    cnn_mega 10   0.83     5.19    0.99        0.87      0.69       0.83
    cnn_mega 25   2.51     -       2.59        2.45      1.96       0.78

float32 vs float64 (B = 10): MNIST 6e-7 (impl. 1) and 1.6e-7 (struct_der,
layerwise); CIFAR 1.7e-4 for all three, from a single ReLU pre-activation within
float32 rounding of zero (see ntkadv/entk.py), not from accumulation.

Run: ``./uvw run python benchmarks/bench_entk.py [--quick] [--mnist-b 10,20,50]
[--cifar-b 10,25] [--repeats 3]`` (~8 min with the defaults, mostly impl. 1 at
MNIST B = 50; peak ~3.5 GB; ``--quick``: B = 10, impl. 1 and layerwise only, one
repeat, no float64 check).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bench import emit, pin_one_core

pin_one_core()
from ntkadv import compat  # noqa: E402

compat.skip_tensorflow_interop()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from ntkadv.dynamics import entk, models  # noqa: E402
from ntkadv.timing import proc_status_kb  # noqa: E402

SHAPES = {"cnn": (28, 28, 1), "cnn_mega": (32, 32, 3)}
PARAMS = {"cnn": 824_458, "cnn_mega": 368_938}
IMPLS = (
    "jacobian_contraction",
    "ntk_vector_products",
    "structured_derivatives",
    "jacobian_gemm",
    "layerwise",
)


# ------------------------------------------------------------------ measurement


def _libc_trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # pragma: no cover - non-glibc
        pass


def best_of(fn, *args, repeats: int = 3) -> tuple[float, float, float]:
    """(first-call wall s incl. compile, best wall s, best CPU s) of ``fn(*args)``.

    With XLA on one thread the CPU time of a call is its compute time; unlike the
    wall time it does not grow when other jobs share the core.
    """
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - start
    wall = cpu = float("inf")
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        jax.block_until_ready(fn(*args))
        wall = min(wall, time.perf_counter() - w0)
        cpu = min(cpu, time.process_time() - c0)
    return first, wall, cpu


def xla_temp_mb(jitted, *args) -> float:
    """XLA's temporary-buffer bytes of a jitted function, in MB (NaN if unknown)."""
    try:
        mem = jitted.lower(*args).compile().memory_analysis()
        return mem.temp_size_in_bytes / 1e6
    except (AttributeError, TypeError):
        return float("nan")


def rel_err(a, b) -> float:
    """Relative Frobenius difference ||a - b|| / ||b|| in float64."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


# ------------------------------------------------------------------ roofline


def roofline(f, params, x, repeats: int) -> dict[str, float]:
    """Best time of the ``(10B, P)`` GEMM ``J J^T`` and of one vmapped vjp.

    Returns:
        ``{'gemm': s, 'vjp': s, 'bound': s, 'gemm_gflops': GFLOP/s}``.
    """
    n_params = sum(leaf.size for leaf in jax.tree_util.tree_leaves(params))
    rows = 10 * len(x)
    jac = jax.random.normal(jax.random.PRNGKey(2), (rows, n_params), jnp.float32)
    gemm = jax.jit(lambda j: j @ j.T)
    _, _, t_gemm = best_of(gemm, jac, repeats=repeats)
    del jac
    _libc_trim()

    def vjps(p, z):
        logits, pullback = jax.vjp(lambda q: f(q, z), p)
        k = logits.shape[1]
        eye = jnp.eye(k, dtype=logits.dtype)
        cotangents = jnp.broadcast_to(eye[:, None, :], (k, *logits.shape))
        return jax.vmap(pullback)(cotangents)

    _, _, t_vjp = best_of(jax.jit(vjps), params, x, repeats=repeats)
    return {
        "gemm": t_gemm,
        "vjp": t_vjp,
        "bound": t_gemm + t_vjp,
        "gemm_gflops": 2 * rows * rows * n_params / t_gemm / 1e9,
    }


# ------------------------------------------------------------------ benchmark


def _setup(name: str, b: int):
    model = models.build_model(name)
    f = models.apply_fn_for(model)
    params = models.init_params(model, jax.random.PRNGKey(0), SHAPES[name])
    x = jax.random.uniform(jax.random.PRNGKey(1), (b, *SHAPES[name]), jnp.float32)
    return f, params, x


def measure_one(name: str, b: int, impl: str, repeats: int, out_path: str) -> dict:
    """Time one implementation in this (fresh) process; save the kernel to a file.

    Returns:
        wall/cpu/first-call seconds, XLA temp MB, the peak RSS of the process and
        its RSS before the first kernel call (MB).
    """
    f, params, x = _setup(name, b)
    kfn = entk.empirical_ntk_fn(f, impl)
    before = (proc_status_kb("VmRSS") or 0) / 1e3
    first, wall, cpu = best_of(kfn, x, None, params, repeats=repeats)
    out = np.asarray(kfn(x, None, params))
    np.save(out_path, out)
    peak = (proc_status_kb("VmHWM") or 0) / 1e3
    return {
        "wall": wall,
        "cpu": cpu,
        "first": first,
        "temp_mb": xla_temp_mb(kfn, x, None, params),
        "rss_before_mb": before,
        "rss_peak_mb": peak,
    }


def _run_child(name: str, b: int, impl: str, repeats: int, tmp: Path) -> dict:
    out_path = tmp / f"{name}_{b}_{impl}.npy"
    cmd = [
        sys.executable,
        __file__,
        "--child",
        f"{name},{b},{impl},{repeats},{out_path}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        raise RuntimeError(f"{cmd} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(lines[-1])
    result["kernel"] = np.load(out_path)
    out_path.unlink()
    return result


def bench_model(name: str, sizes: list[int], args, tmp: Path) -> list[dict]:
    f, params, _ = _setup(name, 1)
    n_params = sum(leaf.size for leaf in jax.tree_util.tree_leaves(params))
    assert n_params == PARAMS[name], (name, n_params)
    print(f"\n== {name}: input {SHAPES[name]}, P = {n_params:,} (verified) ==")
    rows, last = [], {}  # impl -> (CPU s, B) of its last measurement
    for b in sizes:
        _, _, x = _setup(name, b)
        roof = roofline(f, params, x, args.repeats)
        print(
            f"B = {b}: roofline {roof['bound']:.3f} s = GEMM ({10 * b} x {n_params}) "
            f"{roof['gemm']:.3f} s ({roof['gemm_gflops']:.0f} GFLOP/s) + vmapped vjp "
            f"{roof['vjp']:.3f} s"
        )
        ref, t_ref = None, None
        for impl in args.impls:
            t_prev, b_prev = last.get(impl, (0.0, b))
            predicted = t_prev * (b / b_prev) ** 2
            if impl != args.impls[0] and predicted > args.max_seconds:
                rows.append({"model": name, "B": b, "impl": impl, "skipped": True})
                print(
                    f"  {impl:24s} skipped (predicted {predicted:.0f} s, B^2 scaling)"
                )
                continue
            row = _run_child(name, b, impl, args.repeats, tmp)
            out = row.pop("kernel")
            if ref is None:
                ref, t_ref = out, row["cpu"]
            row |= {
                "model": name,
                "B": b,
                "impl": impl,
                "vs_ref": row["cpu"] / t_ref,
                "vs_roof": row["cpu"] / roof["bound"],
                "rss_mb": row["rss_peak_mb"] - row["rss_before_mb"],
                "rel": rel_err(out, ref),
            }
            rows.append(row)
            print(
                f"  {impl:24s} cpu {row['cpu']:7.3f} s (wall {row['wall']:6.3f}, 1st "
                f"{row['first']:5.1f}) x{row['vs_ref']:5.2f} ref  "
                f"x{row['vs_roof']:5.2f} roofline  XLA temp {row['temp_mb']:6.0f} MB"
                f"  peak RSS {row['rss_peak_mb']:6.0f} MB (+{row['rss_mb']:5.0f})  "
                f"rel {row['rel']:.1e}",
                flush=True,
            )
            last[impl] = (row["cpu"], b)
        measured = {r["impl"]: r["cpu"] for r in rows if r["B"] == b and "cpu" in r}
        if "layerwise" in measured:
            what = f"eNTK layerwise {name} B={b}"
            kind = "dense-J roofline: J Jᵀ GEMM + vmapped vjp"
            emit("dynamics", what, measured["layerwise"], roof["bound"], kind)
        if {"layerwise", "jacobian_contraction"} <= measured.keys():
            t_nt = measured["jacobian_contraction"]
            kind = "neural-tangents implementation 1"
            emit("dynamics", what, measured["layerwise"], t_nt, kind)
    return rows


def float64_check(b: int) -> None:
    """float32 error of each implementation against a float64 layerwise eNTK."""
    print(f"\n== float32 vs float64 accumulation (B = {b}) ==")
    jax.config.update("jax_enable_x64", True)
    try:
        for name, shape in SHAPES.items():
            model = models.build_model(name)
            f = models.apply_fn_for(model)
            params = models.init_params(model, jax.random.PRNGKey(0), shape)
            x = jax.random.uniform(jax.random.PRNGKey(1), (b, *shape), jnp.float32)
            p64 = jax.tree_util.tree_map(lambda p: p.astype(jnp.float64), params)
            exact = entk.empirical_ntk_fn(f, "layerwise")(
                x.astype(jnp.float64), None, p64
            )
            errs = []
            for impl in ("jacobian_contraction", "structured_derivatives", "layerwise"):
                out = entk.empirical_ntk_fn(f, impl)(x, None, params)
                errs.append(f"{impl} {rel_err(out, exact):.1e}")
            print(f"  {name}: " + ", ".join(errs))
    finally:
        jax.config.update("jax_enable_x64", False)


def print_table(rows: list[dict]) -> None:
    print(
        f"\n== summary: best CPU s (x ratio to {rows[0]['impl']} / x ratio to "
        "roofline) =="
    )
    impls = list(dict.fromkeys(r["impl"] for r in rows))
    print(f"{'model':9s} {'B':>3s} " + " ".join(f"{i[:22]:>22s}" for i in impls))
    for key in dict.fromkeys((r["model"], r["B"]) for r in rows):
        cells = []
        for impl in impls:
            r = next(r for r in rows if (r["model"], r["B"], r["impl"]) == (*key, impl))
            if r.get("skipped"):
                cells.append(f"{'skipped':>22s}")
            else:
                cell = f"{r['cpu']:7.3f} ({r['vs_ref']:4.2f}/{r['vs_roof']:4.2f})"
                cells.append(cell.rjust(22))
        print(f"{key[0]:9s} {key[1]:3d} " + " ".join(cells))
    print("\npeak memory: XLA temp MB / process peak RSS increase over pre-call MB")
    for key in dict.fromkeys((r["model"], r["B"]) for r in rows):
        cells = []
        for impl in impls:
            r = next(r for r in rows if (r["model"], r["B"], r["impl"]) == (*key, impl))
            cells.append(
                f"{'-':>22s}"
                if r.get("skipped")
                else f"{r['temp_mb']:.0f} / {r['rss_mb']:.0f}".rjust(22)
            )
        print(f"{key[0]:9s} {key[1]:3d} " + " ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-b", default="10,20,50")
    parser.add_argument("--cifar-b", default="10,25")
    parser.add_argument("--impls", default=",".join(IMPLS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=10.0,
        help="skip an implementation (not the first) whose time, extrapolated as "
        "B^2 from its previous B, exceeds this",
    )
    parser.add_argument("--x64-b", type=int, default=10, help="0 skips the check")
    parser.add_argument("--quick", action="store_true", help="B = 10, 1 repeat")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.mnist_b = args.cifar_b = "10"
        args.impls, args.repeats, args.x64_b = "jacobian_contraction,layerwise", 1, 0
    if args.child:
        name, b, impl, repeats, out_path = args.child.split(",")
        print(json.dumps(measure_one(name, int(b), impl, int(repeats), out_path)))
        return
    args.impls = args.impls.split(",")
    print(f"jax {jax.__version__}, devices {jax.devices()}, XLA on 1 thread")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, sizes in (("cnn", args.mnist_b), ("cnn_mega", args.cifar_b)):
            if sizes:
                b_list = [int(b) for b in sizes.split(",")]
                rows += bench_model(name, b_list, args, Path(tmp))
    print_table(rows)
    if args.x64_b:
        float64_check(args.x64_b)


if __name__ == "__main__":
    main()
