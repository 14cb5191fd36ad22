"""One epoch of the dynamics stage at the laptop shapes: where the time goes.

Builds the laptop runs of config.yaml (``dynamics.datasets`` with the shared
``dynamics`` keys and the dataset's eps, as workflow/rules/helpers/dynamics.smk) with
``DynamicsSettings.run_spec`` / ``prefix_subsets`` / ``DynamicsRun`` on random data
of the right shapes (PGD training; MNIST ``CNN``, CIFAR-10 ``CNN_mega``) and reports

1. whether XLA:CPU really runs on one thread (CPU time / wall time of a matmul and
   a convolution, in fresh processes) under three ways of pinning it: none; the
   ``XLA_FLAGS`` the workflow pinned with before ``PJRT_NPROC`` (the former
   ``scripts/_common.single_thread_xla``); confining the process to one CPU while
   jax creates its client, then releasing the affinity;
2. this core's float32 matmul and convolution throughput (XLA, one thread);
3. epochs 0-2 of the real ``DynamicsRun.epochs()`` with the number of XLA
   compilations in each (``jax.monitoring`` backend-compile events), so a retrace
   per epoch would show up;
4. a steady-state epoch split into train steps (of which attack generation and
   plain SGD), evaluation (of which the eval PGD), eNTK and the rest (Python,
   slicing, host transfers), with XLA's flop counts (``jit(f).lower(...)
   .cost_analysis()``: the HLO before optimisation, the same count under either
   runtime, within 0.3% of the thunk runtime's compiled count) and the achieved
   GFLOP/s; and a linearised epoch (train steps + evaluation of the linearised
   model, supp. E.1) on the datasets of ``dynamics.linearize``;
5. measured speed-ups: the layerwise eNTK (dynamics.entk; when the runs use another
   one), XLA's legacy (non-thunk) CPU runtime against the thunk one (the other
   ``--runtime``, in a fresh process), a whole epoch of SGD steps under one
   ``jit`` + ``lax.scan``, buffer donation, one merged evaluation call, and the
   compile time a persistent compilation cache would save per run.

Parts 1, 3 and 5 and the measurement helpers, with the findings of 1, 3 and 5
(thread pin, retracing, speed-ups), are in benchmarks/_dynamics_studies.py.

Each part (train steps, attack generation, evaluation, eNTK, linearised epoch) is
also printed as a ``BENCH`` line (benchmarks/_bench.py protocol) against its XLA flop
count at this core's measured float32 matmul rate (2048^3).

Measured here (jax 0.4.35, 2-core Xeon shared with other jobs; CPU seconds of a
steady epoch, two runs; GFLOP from XLA's cost analysis; thunk runtime and the laptop
sizes of the time: MNIST 500 images, batch 25, eNTK B = 20 by implementation 1;
CIFAR-10 100 images, batch 10, eval 40 + 60, eNTK B = 10):

* Core throughput (XLA, one thread): matmul 2048^3 134-150 GFLOP/s; 3x3 convs
  72-81 (MNIST 14x14x32->64, batch 25), 112-127 (CIFAR 16x16x128->128), 66-74
  (CIFAR 32x32x32->32) GFLOP/s.
* MNIST CNN (20 steps): epoch 5.8-6.5 s = train 3.1-3.7 (52-59%; PGD-10
  generation 2.7-3.0, SGD 0.36-0.41; 100.6 GFLOP, 28-33 GFLOP/s = ~22% of the
  matmul rate: batch 25 of 28x28 images with 1 and 32 input channels), eval
  1.07-1.20 (18%; 36.8 GFLOP), eNTK (impl. 1, B=20) 1.55-1.69 (26%; 69.5 GFLOP).
* CIFAR CNN_mega (10 steps): epoch 5.6-6.0 s = train 2.6-2.9 (43-49%; PGD-5
  2.0-2.3; 196 GFLOP at 68-76 GFLOP/s = ~50% of the matmul rate), eval 2.2-2.5
  (37-42%; 166 GFLOP: PGD-5 on 100 images, as many as are trained on), eNTK
  (B=10) 0.71-0.81 (12-14%).

Run: ``./uvw run python benchmarks/bench_dynamics_epoch.py [--quick] [--datasets
mnist,cifar10] [--repeats 2]`` (~8 min on a loaded machine). ``--pin
{affinity,flags,none}`` and ``--runtime {legacy,thunk}`` choose how this process runs
XLA (default: one thread and the legacy runtime, as the jobs: scripts/_common.
pin_threads); ``--entk IMPL`` replaces config.yaml's ``dynamics.ntk_implementation``;
``--no-pin-check --no-legacy --no-candidates --no-cache-probe --no-linear`` keep it
short (``--no-legacy`` skips the comparison with the other runtime). ``--quick``:
all five, parts only (no whole epochs), the first ``QUICK_STEPS`` SGD steps, one
repeat, the linearised epoch not measured.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from _bench import emit

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_ALLOWED_CPUS = os.sched_getaffinity(0)
PIN_MODES = ("affinity", "flags", "none")
RUNTIMES = ("legacy", "thunk")
# the former scripts/_common.single_thread_xla (now: PJRT_NPROC, _common.pin_threads)
WORKFLOW_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
LEGACY_FLAG = "--xla_cpu_use_thunk_runtime=false"
QUICK_STEPS = 4  # --quick: SGD steps per epoch (a prefix of the training set)


def _early_option(name: str, default: str) -> str:
    """Value of ``--name v`` / ``--name=v`` in sys.argv (read before jax loads)."""
    for i, arg in enumerate(sys.argv):
        if arg == name and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return default


def pin_before_jax(pin: str, runtime: str) -> None:
    """Set XLA_FLAGS and/or the CPU affinity; call before importing jax.

    Args:
        pin: 'affinity' (one CPU while jax builds its thread pools), 'flags'
            (the workflow's XLA_FLAGS) or 'none'.
        runtime: 'thunk' (jax 0.4.35's default XLA:CPU runtime) or 'legacy'.
    """
    flags = [os.environ.get("XLA_FLAGS", "")]
    if pin == "flags":
        flags.append(WORKFLOW_FLAGS)
    if runtime == "legacy":
        flags.append(LEGACY_FLAG)
    os.environ["XLA_FLAGS"] = " ".join(f for f in flags if f)
    if pin == "affinity":
        os.sched_setaffinity(0, {min(_ALLOWED_CPUS)})


def release_cpu_affinity() -> None:
    """Give every thread all allowed CPUs again (jax's pools stay one thread)."""
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), _ALLOWED_CPUS)
        except OSError:  # thread exited meanwhile
            pass


PIN = _early_option("--pin", "affinity")
RUNTIME = _early_option("--runtime", "legacy")
pin_before_jax(PIN, RUNTIME)
from ntkadv import compat  # noqa: E402

compat.skip_tensorflow_interop()

import jax  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402

jax.devices()  # build the CPU client (and its thread pools) now
if PIN == "affinity":
    release_cpu_affinity()

from _dynamics_studies import (  # noqa: E402
    CompileCounter,
    cache_probe,
    candidates,
    flops_of,
    machine_throughput,
    other_runtime_parts,
    pin_probe,
    report_cache_probe,
    report_epochs,
    report_pins,
    report_run,
    timed,
    whole_epochs,
)
from ntkadv.config import settings_from  # noqa: E402
from ntkadv.dynamics import entk, training  # noqa: E402
from ntkadv.dynamics import steps as dsteps  # noqa: E402
from ntkadv.dynamics.measures import kernel_matrix  # noqa: E402
from ntkadv.dynamics.task import DynamicsSettings  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "config.yaml"
SHAPES = {"cnn": (28, 28, 1), "cnn_mega": (32, 32, 3)}
# settings replaced from the command line: ntk_implementation (--entk), max_steps
# (--quick: SGD steps per epoch)
OVERRIDES: dict = {}


# ------------------------------------------------------------------ the epoch


def _settings(name: str) -> dict:
    """config.yaml's dynamics settings of dataset `name` (helpers/dynamics.smk:
    the dataset's entry, the shared keys, its eps), with OVERRIDES applied."""
    config = yaml.safe_load(CONFIG.read_text())
    dyn = config["dynamics"]
    shared = {k: dyn[k] for k in ("kernel_inputs", "ntk_implementation", "eval_batch")}
    s = {**shared, **dyn["datasets"][name], "eps": config["datasets"][name]["eps"]}
    s |= OVERRIDES
    steps = s.pop("max_steps", None)
    if steps:  # a prefix: `steps` batches (at least the kernel and eval batches)
        need = (s["kernel_batch"], s["n_eval_train"], steps * s["batch_size"])
        s["n_train"] = min(s["n_train"], max(need))
    return s


def _linearized(name: str) -> bool:
    config = yaml.safe_load(CONFIG.read_text())
    return name in config["dynamics"]["linearize"]["datasets"]


def _run(name: str) -> training.DynamicsRun:
    s = _settings(name)
    shape = SHAPES[s["model"]]
    rng = np.random.default_rng(0)
    n, m = s["n_train"], s["n_eval_test"]
    data = {
        "x_train": rng.uniform(size=(n, *shape)).astype(np.float32),
        "labels_train": rng.integers(0, 10, n).astype(np.int32),
        "x_test": rng.uniform(size=(m, *shape)).astype(np.float32),
        "labels_test": rng.integers(0, 10, m).astype(np.int32),
    }
    subsets = training.prefix_subsets(
        data, s["n_train"], s["n_eval_train"], s["n_eval_test"]
    )
    job = {"seed": 0, "regime": "pgd", "lin_epoch": None, "snapshots": ()}
    spec = settings_from(DynamicsSettings, s | job).run_spec(num_classes=10)
    return training.DynamicsRun(spec, **subsets)


def epoch_parts(
    name: str,
    repeats: int,
    counter: CompileCounter,
    full: bool = True,
    with_candidates: bool = True,
    extras: bool = True,
    linear: bool = True,
) -> dict:
    """Whole epochs, then one steady-state epoch split into parts with flops.

    Args:
        name: 'mnist' or 'cifar10' (a key of config.yaml's dynamics.datasets).
        repeats: best of this many calls per part (after a warm-up call).
        counter: the process's compile counter.
        full: also run epochs 0-2 of ``run.epochs()`` (else time the parts at the
            initial parameters).
        with_candidates: with `full`, also time the speed-up candidates.
        extras: also time plain SGD, the eval PGD alone and (if the stage's eNTK
            is another one) the layerwise eNTK.
        linear: also time a linearised epoch (train steps + evaluation of the
            linear model at these parameters) if `name` is in dynamics.linearize.
    """
    run = _run(name)
    spec = run.spec
    if full:
        epochs, state = whole_epochs(run, counter, 2)
    else:
        epochs, state = [], run.init_state()
    f, opt = run.apply_fn, run.optimizer
    train_attack = dsteps.pgd_attack_fn(f, spec.train_attack)
    eval_attack = dsteps.pgd_attack_fn(f, spec.eval_attack)
    jit_attack = jax.jit(train_attack)
    jit_eval_attack = jax.jit(eval_attack)
    step = jax.jit(dsteps.train_step_fn(f, opt, train_attack))
    plain = jax.jit(dsteps.train_step_fn(f, opt, None))
    counts = jax.jit(dsteps.correct_counts_fn(f, spec.eval_attack))

    b, steps = spec.batch_size, run.steps_per_epoch
    xb = [run.x_train[t * b : (t + 1) * b] for t in range(steps)]
    yb = [run.labels_train[t * b : (t + 1) * b] for t in range(steps)]
    chunks = [
        (x[lo : lo + spec.eval_batch], y[lo : lo + spec.eval_batch])
        for x, y in run.eval_sets.values()
        for lo in range(0, len(x), spec.eval_batch)
    ]
    xk = run.x_train[: spec.kernel_batch]
    p, o = state.params, state.opt_state
    ntk_impl = entk.resolve_implementation(spec.ntk_implementation, f, p, xk)
    ntk = dsteps.ntk_fn_for(f, ntk_impl, spec.ntk_block)
    ntk_fast = entk.empirical_ntk_fn(f, "layerwise")

    def train_loop(fn=step, *lin):
        params, opt_state = p, o
        for t in range(steps):
            params, opt_state, _ = fn(*lin, params, opt_state, xb[t], yb[t])
        jax.block_until_ready(params)

    def attack_loop():
        for t in range(steps):
            out = jit_attack(p, xb[t], yb[t])
        jax.block_until_ready(out)

    def eval_loop(fn=counts, *lin):
        for x, y in chunks:
            c, r = fn(*lin, p, x, y)
            int(c), int(r)

    def eval_attack_loop():
        for x, y in chunks:
            out = jit_eval_attack(p, x, y)
        jax.block_until_ready(out)

    def ntk_part(fn=ntk):
        np.asarray(kernel_matrix(np.asarray(fn(xk, None, p))))

    def eval_flops(fn, *lin):
        return sum(flops_of(fn, *lin, p, x, y) for x, y in chunks)

    measure = {  # part: (function, XLA flops of one call)
        "train": (train_loop, flops_of(step, p, o, xb[0], yb[0]) * steps),
        "train_attack": (attack_loop, flops_of(jit_attack, p, xb[0], yb[0]) * steps),
        "eval": (eval_loop, eval_flops(counts)),
        "entk": (ntk_part, flops_of(ntk, xk, None, p)),
    }
    if extras:
        measure["train_sgd"] = (
            lambda: train_loop(plain),
            flops_of(plain, p, o, xb[0], yb[0]) * steps,
        )
        measure["eval_attack"] = (eval_attack_loop, eval_flops(jit_eval_attack))
        if ntk_impl != "layerwise":
            measure["entk_layerwise"] = (
                lambda: ntk_part(ntk_fast),
                flops_of(ntk_fast, xk, None, p),
            )
    if linear and _linearized(name):  # the linear model at theta_L = p (supp. E.1)
        lin = training._network_functions(  # the jitted pieces DynamicsRun uses
            spec.model,
            spec.num_classes,
            spec.learning_rate,
            spec.train_attack,
            spec.eval_attack,
            False,
            ntk_impl,
            spec.ntk_block,
            True,
        )
        step_flops = flops_of(lin["step"], p, p, o, xb[0], yb[0]) * steps
        measure["linear_epoch"] = (
            lambda: (train_loop(lin["step"], p), eval_loop(lin["counts"], p)),
            step_flops + eval_flops(lin["counts"], p),
        )
    parts = {}
    for key, (fn, flops) in measure.items():
        t = parts[key] = timed(fn, repeats)
        t["gflop"] = flops / 1e9
        t["gflops_per_s"] = flops / t["cpu"] / 1e9

    result = {
        "name": name,
        "model": spec.model,
        "steps": steps,
        "eval_points": sum(len(x) for x, _ in chunks),
        "entk": f"{ntk_impl}, B={spec.kernel_batch}",
        "parts": parts,
    }
    if full:
        result |= {
            "eval_calls": len(chunks),
            "epochs": epochs,
            "candidates": candidates(run, p, o, xb, yb, counter, repeats)
            if with_candidates
            else None,
            "other_cpu": epochs[-1]["cpu"]
            - sum(parts[k]["cpu"] for k in ("train", "eval", "entk")),
            "compile_s_run": sum(e["compile_s"] for e in epochs),
        }
    return result


# ------------------------------------------------------------------ reporting


def _child(args: list[str]) -> dict:
    cmd = [sys.executable, __file__, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        raise RuntimeError(f"{cmd} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


LABELS = {  # the parts printed as BENCH lines
    "train": "train steps (attack + SGD)",
    "train_attack": "train attack generation",
    "eval": "evaluation (clean + PGD)",
    "entk": "eNTK",
    "linear_epoch": "linearised epoch (train steps + evaluation)",
}


def report_dataset(
    r: dict, machine: dict, other: dict | None, other_runtime: str
) -> None:
    print(
        f"\n== {r['name']} ({r['model']}): {r['steps']} SGD steps/epoch, "
        f"{r['eval_points']} eval points, eNTK {r['entk']} =="
    )
    steady = report_epochs(r)
    if steady is None:
        print("  parts at the initial parameters, best CPU s:")
    peak_mm = machine["matmul 2048^3"]
    for key, t in r["parts"].items():
        share = f" ({t['cpu'] / steady:4.0%})" if steady else ""
        cmp = ""
        if other is not None and key in other["parts"]:
            ot = other["parts"][key]["cpu"]
            cmp = f"  {other_runtime} rt {ot:6.3f} s (x{t['cpu'] / ot:4.2f})"
        print(
            f"    {key:15s} {t['cpu']:7.3f} s{share} "
            f"{t['gflop']:7.2f} GFLOP {t['gflops_per_s']:6.1f} GFLOP/s "
            f"({t['gflops_per_s'] / peak_mm:4.0%} of matmul){cmp}"
        )
    if steady is not None:
        report_run(r, _settings(r["name"])["epochs"])


def emit_parts(r: dict, machine: dict) -> None:
    """BENCH lines of the LABELS parts: CPU time vs XLA flops at the matmul rate."""
    steps = f" ({r['steps']} steps)"
    detail = {"entk": f" ({r['entk']})", "train": steps, "train_attack": steps}
    for key, label in LABELS.items():
        t = r["parts"].get(key)
        if t is not None and t["gflop"] > 0:
            emit(
                "dynamics",
                f"{r['name']} {label}{detail.get(key, '')}",
                t["cpu"],
                t["gflop"] / machine["matmul 2048^3"],
                "XLA flop count at the float32 matmul rate",
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="mnist,cifar10")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--pin", choices=PIN_MODES, default="affinity")
    parser.add_argument("--runtime", choices=RUNTIMES, default="legacy")
    parser.add_argument(
        "--entk",
        choices=entk.IMPLEMENTATIONS,
        help="eNTK implementation of the runs (default: config.yaml's "
        "dynamics.ntk_implementation)",
    )
    parser.add_argument("--no-pin-check", action="store_true")
    parser.add_argument("--no-candidates", action="store_true")
    parser.add_argument(
        "--no-legacy", action="store_true", help="no comparison with the other runtime"
    )
    parser.add_argument("--no-cache-probe", action="store_true")
    parser.add_argument("--no-linear", action="store_true")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"parts only, {QUICK_STEPS} SGD steps, 1 repeat, every --no-* option",
    )
    parser.add_argument("--probe-pin", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--parts-json", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cache-probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.getLogger("jax").setLevel(logging.ERROR)
    names = [n for n in args.datasets.split(",") if n]
    if args.entk:
        OVERRIDES["ntk_implementation"] = args.entk
    if args.quick:
        OVERRIDES["max_steps"], args.repeats = QUICK_STEPS, 1
        for flag in ("pin_check", "candidates", "legacy", "cache_probe", "linear"):
            setattr(args, f"no_{flag}", True)
    counter = CompileCounter()
    if args.probe_pin:
        print(json.dumps(pin_probe()))
        return
    if args.cache_probe:
        print(json.dumps(cache_probe(args.cache_probe, _run)))
        return
    if args.parts_json:
        parts = {
            n: epoch_parts(n, args.repeats, counter, False, linear=not args.no_linear)
            for n in names
        }
        print(json.dumps(parts))
        return
    print(
        f"jax {jax.__version__}; this process: pin={PIN}, runtime={RUNTIME}, "
        f"eNTK {args.entk or 'of config.yaml'}"
    )
    if not args.no_pin_check:
        report_pins(_child)
    machine = machine_throughput(args.repeats)
    print("\n== 2. this core, XLA float32, one thread ==")
    for k, v in machine.items():
        print(f"  {k:30s} {v:6.1f} GFLOP/s")
    if not args.no_cache_probe:
        report_cache_probe(_child, PIN)
    results = {
        n: epoch_parts(
            n,
            args.repeats,
            counter,
            full=not args.quick,
            with_candidates=not args.no_candidates,
            extras=not args.quick,
            linear=not args.no_linear,
        )
        for n in names
    }
    other_runtime = next(r for r in RUNTIMES if r != RUNTIME)
    other = None
    if names and not args.no_legacy:
        other = other_runtime_parts(_child, args, PIN, other_runtime)
    for n in names:
        report_dataset(results[n], machine, other and other[n], other_runtime)
    for n in names:
        emit_parts(results[n], machine)


if __name__ == "__main__":
    main()
