"""Auxiliary studies of benchmarks/bench_dynamics_epoch.py (imported by it).

The benchmark's core times one epoch of the dynamics stage split into parts and
prints them as ``BENCH`` lines; this module holds the studies around it and the
measurement helpers both use:

* measurement: `timed` (best wall / CPU seconds), `flops_of` (XLA's flop count of
  the lowered HLO), `CompileCounter` (backend compilations via jax.monitoring),
  `machine_throughput` (2. this core's matmul and conv rates: the BENCH bound);
* 1. thread pin: `RunnableSampler`, `pin_probe` (how many threads a matmul and a
  conv really use) and `report_pins` (every pin mode and runtime, fresh processes);
* 3. whole epochs: `whole_epochs` (epochs 0..n of ``DynamicsRun.epochs()`` with
  their compilations, so a retrace per epoch would show up), `report_epochs` and
  `report_run` (the rest of the epoch, compile seconds, the candidates);
* 5. speed-ups: `candidates` (``lax.scan`` over SGD steps, buffer donation, one
  merged evaluation call) and `report_candidates`; `other_runtime_parts` (the
  parts under the other XLA runtime, legacy vs thunk); `cache_probe` (what a
  persistent compilation cache saves) and `report_cache_probe`.

Measured (jax 0.4.35, 2-core Xeon shared with other jobs; the laptop sizes of
bench_dynamics_epoch.py's docstring):

* Thread pin. ``XLA_FLAGS="--xla_cpu_multi_thread_eigen=false
  intra_op_parallelism_threads=1"`` (the removed scripts/_common.single_thread_xla)
  makes convolutions single-threaded but NOT matmuls: a 2048^2 matmul had >= 2 runnable
  threads 96% of the time (94% unpinned), on both the thunk and the legacy
  runtime. ``intra_op_parallelism_threads`` is a TensorFlow session option, not
  an XLA flag; XLA ignores it silently (it ignores ``--xla_not_a_flag=3`` too).
  The matmul (oneDNN / Eigen dot) runs on the PJRT CPU client's intra-op pool,
  whose size jax 0.4.35 takes from the CPU affinity when the client is created.
  What works: ``os.sched_setaffinity(0, {cpu})`` before jax creates its client
  (first ``jax.devices()`` or array), then restore the affinity of every thread in
  /proc/self/task (``bench_dynamics_epoch.release_cpu_affinity``): 0% of samples
  with >= 2 runnable threads for matmul and conv, and the threads may still run on
  either core.
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

Imports jax: import it only after the benchmark has pinned XLA (``pin_before_jax``).
The studies that run in fresh processes take the benchmark's ``_child`` (it runs
the benchmark script itself with a hidden option).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp

from ntkadv.dynamics import steps as dsteps
from ntkadv.dynamics import training

SCAN_BATCHES = 3  # SGD steps timed under lax.scan (measured 20x slower than a loop)


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


# ------------------------------------------------------------------ 1. thread pin


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


def report_pins(child: Callable[[list[str]], dict]) -> None:
    """Part 1 of the report: `pin_probe` in fresh processes (`child`: the benchmark run
    with ``--probe-pin``) under every pin mode and runtime."""
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
        r = child(["--probe-pin", "--pin", pin, "--runtime", runtime])
        cells = [
            f"{k}: >=2 threads runnable {r[k]['parallel']:4.0%} of the time, cpu/wall "
            f"{r[k]['cpu'] / r[k]['wall']:.2f} "
            f"({r[k]['wall']:.2f} s wall)"
            for k in ("matmul", "conv")
        ]
        print(f"  pin={pin:8s} runtime={runtime:6s} " + "; ".join(cells))


# ------------------------------------------------------------------ 3. whole epochs


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


def report_epochs(r: dict) -> float | None:
    """A dataset's whole epochs (`whole_epochs`), if run: returns the steady (last)
    epoch's CPU seconds, else None (nothing printed)."""
    if not r.get("epochs"):
        return None
    print("  whole epochs of DynamicsRun.epochs() (epoch 0 = init eval + eNTK):")
    for e in r["epochs"]:
        print(
            f"    epoch {e['epoch']}: wall {e['wall']:6.2f} s, cpu "
            f"{e['cpu']:6.2f} s, {e['compiles']:3d} XLA compilations "
            f"({e['compile_s']:.2f} s), {e['traces']} traces"
        )
    steady = r["epochs"][-1]["cpu"]
    print(f"  steady epoch, best CPU s (share of epoch 2 = {steady:.2f} s CPU):")
    return steady


def report_run(r: dict, n_epochs: int) -> None:
    """After the parts of a dataset with whole epochs: the rest of the epoch, the
    run's compile seconds (over `n_epochs` epochs) and the speed-up candidates."""
    print(
        f"    other = epoch - train - eval - entk: {r['other_cpu']:6.3f} s "
        "(Python, slicing, host copies; parts are best-of, the epoch one run)"
    )
    print(
        f"  XLA compile seconds of a run: {r['compile_s_run']:.1f} s (epochs 0-2; "
        f"none after) = {r['compile_s_run'] / n_epochs:.2f} s per epoch over "
        f"{n_epochs} epochs"
    )
    report_candidates(r)


# ------------------------------------------------------------------ 5. speed-ups


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
    counts = jax.jit(dsteps.correct_counts_fn(f, spec.eval_attack))
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
        c, r, _ = counts(p, x_all, y_all)
        int(c), int(r)

    return {
        "scan": scan_run,
        "loop_same_batches": timed(lambda: loop(step, n_scan), repeats),
        "loop_copied": timed(lambda: loop(step, len(xb), copy=True), repeats),
        "donated": timed(lambda: loop(donated, len(xb), copy=True), repeats),
        "eval_merged": timed(merged_eval, repeats),
    }


def report_candidates(r: dict) -> None:
    """The speed-up candidates of one dataset (`candidates`), if measured."""
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


def other_runtime_parts(
    child: Callable[[list[str]], dict], args, pin: str, runtime: str
) -> dict:
    """`epoch_parts` of every dataset under the other XLA runtime `runtime`, in a
    fresh process (`child`: the benchmark run with ``--parts-json``)."""
    return child(
        ["--parts-json", "--datasets", args.datasets, "--repeats"]
        + [str(args.repeats), "--pin", pin, "--runtime", runtime]
        + (["--entk", args.entk] if args.entk else [])
        + (["--no-linear"] if args.no_linear else [])
    )


def cache_probe(
    cache_dir: str, make_run: Callable[[str], training.DynamicsRun]
) -> dict:
    """First call of a jitted CIFAR PGD-5 attack with a persistent compile cache.

    Args:
        cache_dir: the persistent cache's directory.
        make_run: the benchmark's run builder (dataset name -> DynamicsRun).
    """
    jax.config.update("jax_compilation_cache_dir", cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    events: dict[str, int] = {}

    def on_event(event: str, **_: object) -> None:
        events[event] = events.get(event, 0) + 1

    jax.monitoring.register_event_listener(on_event)
    run = make_run("cifar10")
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


def report_cache_probe(child: Callable[[list[str]], dict], pin: str) -> None:
    """`cache_probe` in two fresh processes (`child`: the benchmark run with
    ``--cache-probe``) sharing one cache directory: cold, then warm."""
    with tempfile.TemporaryDirectory() as cache:
        runs = [child(["--cache-probe", cache, "--pin", pin]) for _ in range(2)]
    print(
        "  persistent compilation cache (CIFAR PGD-5 attack, fresh processes): "
        f"first call {runs[0]['first_call_s']:.2f} s cold ({runs[0]['misses']} "
        f"misses), {runs[1]['first_call_s']:.2f} s warm ({runs[1]['hits']} hits)"
    )
