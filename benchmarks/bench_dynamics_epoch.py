"""One epoch of the dynamics stage at the laptop shapes: where the time goes.

Builds the laptop runs of config.yaml (``dynamics.datasets`` with the shared
``dynamics`` keys and the dataset's eps, as workflow/rules/helpers/dynamics.smk) with
``training.spec_from_settings`` / ``prefix_subsets`` / ``DynamicsRun`` on random data
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
   ``--runtime``, in a fresh process), a
   whole epoch of SGD steps under one ``jit`` + ``lax.scan``, buffer donation,
   one merged evaluation call, and the compile time a persistent compilation
   cache would save per run.

Each part (train steps, attack generation, evaluation, eNTK, linearised epoch) is
also printed as a ``BENCH`` line (benchmarks/_bench.py protocol) against its XLA flop
count at this core's measured float32 matmul rate (2048^3).

Measured here (jax 0.4.35, 2-core Xeon shared with other jobs; CPU seconds of a
steady epoch, two runs; GFLOP from XLA's cost analysis; thunk runtime and the laptop
sizes of the time: MNIST 500 images, batch 25, eNTK B = 20 by implementation 1;
CIFAR-10 100 images, batch 10, eval 40 + 60, eNTK B = 10):

* Thread pin. ``XLA_FLAGS="--xla_cpu_multi_thread_eigen=false
  intra_op_parallelism_threads=1"`` (scripts/_common.single_thread_xla) makes
  convolutions single-threaded but NOT matmuls: a 2048^2 matmul had >= 2 runnable
  threads 96% of the time (94% unpinned), on both the thunk and the legacy
  runtime. ``intra_op_parallelism_threads`` is a TensorFlow session option, not
  an XLA flag; XLA ignores it silently (it ignores ``--xla_not_a_flag=3`` too).
  The matmul (oneDNN / Eigen dot) runs on the PJRT CPU client's intra-op pool,
  whose size jax 0.4.35 takes from the CPU affinity when the client is created.
  What works: ``os.sched_setaffinity(0, {cpu})`` before jax creates its client
  (first ``jax.devices()`` or array), then restore the affinity of every thread in
  /proc/self/task (``release_cpu_affinity``): 0% of samples with >= 2 runnable
  threads for matmul and conv, and the threads may still run on either core.
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
* No retracing: epoch 0 compiles 37-42 executables (mostly tiny eager ops),
  epoch 1 the 1-3 train-step ones, every later epoch 0 compilations, 0 traces.
  XLA compile time of a run: 2.3-8.2 s wall (load-dependent), 0.15-0.6 s/epoch.

Top speed-ups (1 and 2 measured together on whole epochs: MNIST 6.52 -> 3.54 s,
x1.84; CIFAR 5.97 -> 3.66 s, x1.63):

1. XLA's legacy CPU runtime (``--xla_cpu_use_thunk_runtime=false`` in XLA_FLAGS):
   train x1.46-1.71 and eval x1.35-1.50 (MNIST), x1.51-1.64 and x1.48-1.54
   (CIFAR); compile +10-30% (~0.1-0.5 s per function). It slows impl. 1 of the
   eNTK (x0.6-0.9) but speeds up the layerwise one (x1.16-1.34).
2. The layerwise eNTK (ntkadv.dynamics.entk): MNIST 1.6-1.7 -> 0.12-0.13 s per epoch
   (-25% of the epoch; at B=50 6.4 -> 0.44 s), CIFAR 0.71-0.81 -> 0.57-0.61 s.
3. The evaluation (18% MNIST, ~40% CIFAR): e.g. half the eval images or robust
   accuracy every other epoch saves ~9% / ~20% (estimated, proportional; it makes
   the accuracy curves noisier and leaves the kernels unchanged).

No gain: a whole epoch of SGD steps under one ``jit`` + ``lax.scan`` is 7-23x
SLOWER (XLA:CPU loops over conv gradients, as in bench_pgd_unroll.py); buffer
donation 0 +- 3%; one merged eval call instead of two 0 to -9%; a persistent
compilation cache works on CPU (first call 2.6-3.8 -> 1.8-2.8 s warm) but can
save at most the compile seconds above (<= 0.6 s per epoch).

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
import tempfile
import threading
import time
from pathlib import Path

from _bench import emit

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_ALLOWED_CPUS = os.sched_getaffinity(0)
PIN_MODES = ("affinity", "flags", "none")
RUNTIMES = ("legacy", "thunk")
# the former scripts/_common.single_thread_xla (now: PJRT_NPROC, _common.pin_threads)
WORKFLOW_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
LEGACY_FLAG = "--xla_cpu_use_thunk_runtime=false"
SCAN_BATCHES = 3  # SGD steps timed under lax.scan (measured 20x slower than a loop)
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
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402

jax.devices()  # build the CPU client (and its thread pools) now
if PIN == "affinity":
    release_cpu_affinity()

from ntkadv.dynamics import entk, training  # noqa: E402
from ntkadv.dynamics import steps as dsteps  # noqa: E402
from ntkadv.dynamics.measures import kernel_matrix  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "config.yaml"
SHAPES = {"cnn": (28, 28, 1), "cnn_mega": (32, 32, 3)}
# settings replaced from the command line: ntk_implementation (--entk), max_steps
# (--quick: SGD steps per epoch)
OVERRIDES: dict = {}


# ------------------------------------------------------------------ measurement


def timed(fn, repeats: int) -> dict[str, float]:
    """Best wall and CPU seconds of ``fn()`` over `repeats` calls after a warm-up."""
    fn()
    wall = cpu = float("inf")
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - w0)
        cpu = min(cpu, time.process_time() - c0)
    return {"wall": wall, "cpu": cpu}


def flops_of(jitted, *args) -> float:
    """XLA's flop count of one call of a jitted function at these arguments.

    From the lowered (unoptimised) HLO: the compiled module's cost analysis does not
    count the legacy runtime's oneDNN matmul custom calls (~0 or negative flops).
    NaN for a function that is not a jax.jit (e.g. an ``nt.batch`` of one).
    """
    if not hasattr(jitted, "lower"):
        return float("nan")
    cost = jitted.lower(*args).cost_analysis()
    if isinstance(cost, list):
        cost = cost[0]
    return float(cost.get("flops", float("nan")))


class CompileCounter:
    """Counts XLA backend compilations (and their seconds) via jax.monitoring."""

    def __init__(self) -> None:
        self.count, self.seconds, self.traces = 0, 0.0, 0
        jax.monitoring.register_event_duration_secs_listener(self._on_event)

    def _on_event(self, event: str, duration: float, **_: object) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            self.count += 1
            self.seconds += duration
        elif event == "/jax/core/compile/jaxpr_trace_duration":
            self.traces += 1

    def snapshot(self) -> tuple[int, float, int]:
        return self.count, self.seconds, self.traces


class RunnableSampler:
    """Samples how many threads of this process are runnable at once (from /proc).

    A thread in state R is running or waiting for a core, so the count shows the
    parallelism XLA asks for even when other jobs load the cores (where the CPU /
    wall-time ratio would stay near 1 for a multi-threaded op).
    """

    def __init__(self, period: float = 5e-4) -> None:
        self.period, self.samples = period, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        me = threading.get_native_id()
        while not self._stop.is_set():
            running = 0
            for tid in os.listdir("/proc/self/task"):
                if int(tid) == me:
                    continue
                try:
                    with open(f"/proc/self/task/{tid}/stat") as fh:
                        state = fh.read().rsplit(")", 1)[1].split()[0]
                except OSError:  # thread exited meanwhile
                    continue
                running += state == "R"
            self.samples.append(running)
            time.sleep(self.period)

    def __enter__(self) -> RunnableSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def fraction_parallel(self) -> float:
        """Share of the busy samples (>= 1 runnable) with >= 2 runnable threads."""
        busy = [n for n in self.samples if n >= 1]
        return sum(n >= 2 for n in busy) / max(len(busy), 1)


def pin_probe() -> dict[str, dict[str, float]]:
    """How many threads a 2048^2 matmul and a 3x3 conv really use (this process).

    Returns, per op, wall and CPU seconds of ten calls and ``parallel``: the share
    of samples with two or more runnable threads during ten more calls
    (:class:`RunnableSampler`).
    """
    a = jax.random.normal(jax.random.PRNGKey(0), (2048, 2048), jnp.float32)
    x = jax.random.normal(jax.random.PRNGKey(1), (64, 32, 32, 64), jnp.float32)
    w = jax.random.normal(jax.random.PRNGKey(2), (3, 3, 64, 64), jnp.float32)
    mm = jax.jit(lambda a: a @ a)
    conv = jax.jit(
        lambda x, w: jax.lax.conv_general_dilated(
            x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
    )
    out = {}
    for name, fn, args in (("matmul", mm, (a,)), ("conv", conv, (x, w))):
        jax.block_until_ready(fn(*args))
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in range(10):
            jax.block_until_ready(fn(*args))
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        with RunnableSampler() as sampler:  # separately: the sampler uses CPU too
            for _ in range(10):
                jax.block_until_ready(fn(*args))
        out[name] = {"wall": wall, "cpu": cpu, "parallel": sampler.fraction_parallel()}
    out["threads"] = {"n": len(os.listdir("/proc/self/task"))}
    return out


def machine_throughput(repeats: int) -> dict[str, float]:
    """GFLOP/s of XLA float32 matmul and of the CNNs' heaviest 3x3 convolutions."""
    out = {}
    a = jax.random.normal(jax.random.PRNGKey(0), (2048, 2048), jnp.float32)
    mm = jax.jit(lambda a: a @ a)
    t = timed(lambda: jax.block_until_ready(mm(a)), repeats)["cpu"]
    out["matmul 2048^3"] = flops_of(mm, a) / t / 1e9
    conv = jax.jit(
        lambda x, w: jax.lax.conv_general_dilated(
            x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
    )
    for label, xs, ws in (
        ("conv MNIST 25x14x14x32->64", (25, 14, 14, 32), (3, 3, 32, 64)),
        ("conv CIFAR 10x16x16x128->128", (10, 16, 16, 128), (3, 3, 128, 128)),
        ("conv CIFAR 10x32x32x32->32", (10, 32, 32, 32), (3, 3, 32, 32)),
    ):
        x = jax.random.normal(jax.random.PRNGKey(1), xs, jnp.float32)
        w = jax.random.normal(jax.random.PRNGKey(2), ws, jnp.float32)
        t = timed(lambda x=x, w=w: jax.block_until_ready(conv(x, w)), repeats)["cpu"]
        out[label] = flops_of(conv, x, w) / t / 1e9
    return out


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
    spec = training.spec_from_settings(s, "pgd", s["eps"], seed=0, num_classes=10)
    return training.DynamicsRun(spec, **subsets)


def whole_epochs(run: training.DynamicsRun, counter: CompileCounter, n: int):
    """Epochs 0..n of ``run.epochs()``: wall, CPU, compilations, compile seconds."""
    rows, gen, record = [], run.epochs(), None
    for epoch in range(n + 1):
        c0, s0, t0 = counter.snapshot()
        w0, p0 = time.perf_counter(), time.process_time()
        record = next(gen)
        c1, s1, t1 = counter.snapshot()
        rows.append(
            {
                "epoch": epoch,
                "wall": time.perf_counter() - w0,
                "cpu": time.process_time() - p0,
                "compiles": c1 - c0,
                "compile_s": s1 - s0,
                "traces": t1 - t0,
            }
        )
    return rows, record.state


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
    counts = jax.jit(dsteps.correct_counts_fn(f, eval_attack))

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


def candidates(run, p, o, xb, yb, counter: CompileCounter, repeats: int) -> dict:
    """Time the speed-up candidates at parameters `p`, optimiser state `o`.

    * a whole epoch of SGD steps as one jitted ``lax.scan`` (on the first
      ``SCAN_BATCHES`` batches only: it is slow) vs the Python loop on them;
    * the Python loop with ``donate_argnums=(0, 1)``;
    * one ``counts`` call on the concatenated eval sets instead of one per set.
    """
    spec, f, opt = run.spec, run.apply_fn, run.optimizer
    step_pure = dsteps.train_step_fn(f, opt, dsteps.pgd_attack_fn(f, spec.train_attack))
    step = jax.jit(step_pure)
    counts = jax.jit(
        dsteps.correct_counts_fn(f, dsteps.pgd_attack_fn(f, spec.eval_attack))
    )
    n_scan = min(SCAN_BATCHES, len(xb))

    def scan_steps(params, opt_state, xs, ys):
        def body(carry, batch):
            params, opt_state, loss = step_pure(*carry, *batch)
            return (params, opt_state), loss

        return jax.lax.scan(body, (params, opt_state), (xs, ys))

    scan = jax.jit(scan_steps)
    xs, ys = jnp.stack(xb[:n_scan]), jnp.stack(yb[:n_scan])
    c0, s0, _ = counter.snapshot()
    w0, p0 = time.perf_counter(), time.process_time()
    jax.block_until_ready(scan(p, o, xs, ys))  # one call: compile + run
    compile_s = counter.snapshot()[1] - s0 if counter.snapshot()[0] > c0 else 0.0
    scan_run = {
        "wall": time.perf_counter() - w0 - compile_s,
        "cpu": time.process_time() - p0 - compile_s,
        "compile_s": compile_s,
        "batches": n_scan,
    }

    def loop(fn, n, copy=False):
        params, opt_state = p, o
        if copy:  # donated buffers are consumed: start from copies
            params = jax.tree_util.tree_map(jnp.copy, p)
            opt_state = jax.tree_util.tree_map(jnp.copy, o)
        for t in range(n):
            params, opt_state, _ = fn(params, opt_state, xb[t], yb[t])
        jax.block_until_ready(params)

    donated = jax.jit(step_pure, donate_argnums=(0, 1))
    x_all = jnp.concatenate([x for x, _ in run.eval_sets.values()])
    y_all = jnp.concatenate([y for _, y in run.eval_sets.values()])

    def merged_eval():
        c, r = counts(p, x_all, y_all)
        int(c), int(r)

    return {
        "scan": scan_run,
        "loop_same_batches": timed(lambda: loop(step, n_scan), repeats),
        "loop_copied": timed(lambda: loop(step, len(xb), copy=True), repeats),
        "donated": timed(lambda: loop(donated, len(xb), copy=True), repeats),
        "eval_merged": timed(merged_eval, repeats),
    }


def cache_probe(cache_dir: str) -> dict:
    """First call of a jitted CIFAR PGD-5 attack with a persistent compile cache."""
    jax.config.update("jax_compilation_cache_dir", cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    events: dict[str, int] = {}

    def on_event(event: str, **_: object) -> None:
        events[event] = events.get(event, 0) + 1

    jax.monitoring.register_event_listener(on_event)
    run = _run("cifar10")
    attack = jax.jit(dsteps.pgd_attack_fn(run.apply_fn, run.spec.eval_attack))
    params = run.init_state().params
    x, y = run.eval_sets["test"]
    w0 = time.perf_counter()
    jax.block_until_ready(attack(params, x, y))
    return {
        "first_call_s": time.perf_counter() - w0,
        "hits": events.get("/jax/compilation_cache/cache_hits", 0),
        "misses": events.get("/jax/compilation_cache/cache_misses", 0),
    }


# ------------------------------------------------------------------ reporting


def _child(args: list[str]) -> dict:
    cmd = [sys.executable, __file__, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        raise RuntimeError(f"{cmd} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def report_pins() -> None:
    print(
        "== 1. is XLA on one thread? share of samples with >= 2 runnable threads "
        "and CPU / wall time of ten calls (fresh processes) =="
    )
    for pin, runtime in (
        ("none", "thunk"),
        ("flags", "thunk"),
        ("flags", "legacy"),
        ("affinity", "thunk"),
        ("affinity", "legacy"),
    ):
        r = _child(["--probe-pin", "--pin", pin, "--runtime", runtime])
        cells = [
            f"{k}: >=2 threads runnable {r[k]['parallel']:4.0%} of the time, cpu/wall "
            f"{r[k]['cpu'] / r[k]['wall']:.2f} "
            f"({r[k]['wall']:.2f} s wall)"
            for k in ("matmul", "conv")
        ]
        print(f"  pin={pin:8s} runtime={runtime:6s} " + "; ".join(cells))


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
    steady = None
    if r.get("epochs"):
        print("  whole epochs of DynamicsRun.epochs() (epoch 0 = init eval + eNTK):")
        for e in r["epochs"]:
            print(
                f"    epoch {e['epoch']}: wall {e['wall']:6.2f} s, cpu "
                f"{e['cpu']:6.2f} s, {e['compiles']:3d} XLA compilations "
                f"({e['compile_s']:.2f} s), {e['traces']} traces"
            )
        steady = r["epochs"][-1]["cpu"]
        print(f"  steady epoch, best CPU s (share of epoch 2 = {steady:.2f} s CPU):")
    else:
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
    if steady is None:
        return
    print(
        f"    other = epoch - train - eval - entk: {r['other_cpu']:6.3f} s "
        "(Python, slicing, host copies; parts are best-of, the epoch one run)"
    )
    n_epochs = _settings(r["name"])["epochs"]
    print(
        f"  XLA compile seconds of a run: {r['compile_s_run']:.1f} s (epochs 0-2; "
        f"none after) = {r['compile_s_run'] / n_epochs:.2f} s per epoch over "
        f"{n_epochs} epochs"
    )
    c = r["candidates"]
    if c is None:
        return
    sc = c["scan"]
    print(
        f"  lax.scan over {sc['batches']} SGD steps: {sc['cpu']:.3f} s (+ compile "
        f"{sc['compile_s']:.1f} s) vs Python loop {c['loop_same_batches']['cpu']:.3f}"
        f" s: x{sc['cpu'] / c['loop_same_batches']['cpu']:.1f} slower"
    )
    print(
        f"  donated buffers: {c['donated']['cpu']:.3f} s vs "
        f"{c['loop_copied']['cpu']:.3f} s (both from copied params); one merged eval "
        f"call {c['eval_merged']['cpu']:.3f} s vs {r['parts']['eval']['cpu']:.3f} s "
        f"in {r['eval_calls']} calls"
    )


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
        print(json.dumps(cache_probe(args.cache_probe)))
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
        report_pins()
    machine = machine_throughput(args.repeats)
    print("\n== 2. this core, XLA float32, one thread ==")
    for k, v in machine.items():
        print(f"  {k:30s} {v:6.1f} GFLOP/s")
    if not args.no_cache_probe:
        with tempfile.TemporaryDirectory() as cache:
            runs = [_child(["--cache-probe", cache, "--pin", PIN]) for _ in range(2)]
        print(
            "  persistent compilation cache (CIFAR PGD-5 attack, fresh processes): "
            f"first call {runs[0]['first_call_s']:.2f} s cold ({runs[0]['misses']} "
            f"misses), {runs[1]['first_call_s']:.2f} s warm ({runs[1]['hits']} hits)"
        )
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
        other = _child(
            ["--parts-json", "--datasets", args.datasets, "--repeats"]
            + [str(args.repeats), "--pin", PIN, "--runtime", other_runtime]
            + (["--entk", args.entk] if args.entk else [])
            + (["--no-linear"] if args.no_linear else [])
        )
    for n in names:
        report_dataset(results[n], machine, other and other[n], other_runtime)
    for n in names:
        emit_parts(results[n], machine)


if __name__ == "__main__":
    main()
