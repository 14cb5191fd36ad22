"""Benchmark of rule attack_ntk per family: time vs a lower bound measured in the run.

For each architecture (default FC1 and CONV1 on binary CIFAR, the laptop config's
sizes and budgets) it times, on the workflow's own caches or on random inputs (see
Inputs below):

* lower bound: the Jacobian contraction of the suite (every machine and time at
  once) + every closed-form point's kernel row and every PGD step at the kernel-row
  and gradient-row rates measured here on one block of the same shape (so the bound
  is the suite's essential kernel work at its best measured throughput);
* before: the previous implementation (per-job eager PGD in `block_size` blocks,
  closed-form points evaluated in 50 x 50 Gram blocks, un-jitted gradient check
  closing over x_train), true labels only;
* after, P = 0 and P = config: `attack_kernel_machine` without and with the
  permuted-label nulls and the random-sign control.

It prints each time (CPU seconds of the process: XLA runs on one thread, as in the
rule, `_bench.pin_one_core`, and CPU time does not count other users of a shared
machine) and its ratio to the lower bound, and one ``BENCH`` line per arch and
`attack_kernel_machine` variant against that bound (benchmarks/_bench.py protocol;
with ``--loops`` also the suite's PGD loop form against the fastest one). Each
`attack_kernel_machine` variant runs twice: the first call compiles the suite's
jitted functions (cached per process; what a job pays once) and is printed with its
own BENCH line, the second is the compiled run (the bound's rates exclude
compilation too). Peak memory
is in the rule's benchmark TSV (results/benchmarks/attack_ntk/...; max_rss).

Inputs: the workflow's own caches (results/ of a run of the config; e.g. `snakemake
results/ntk/cifar2/conv1/jacobian.h5 results/spectra/cifar2/conv1/eigh.h5 ...`), or
with ``--quick`` (or ``--random``) random images and ±1 labels of the dataset's shape
(n_train 200, n_test 50; Gram, spectrum and Jacobian cache built in memory), so it
runs without a results directory; ``--quick`` also skips "before" and P = 0.

Run:
    ./uvw run python benchmarks/bench_attacks.py [--quick] [--results results]
        [--archs fc1,conv1] [--loops]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _bench import emit, pin_one_core, timed

pin_one_core()
REPO = Path(__file__).resolve().parents[1]

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402

from ntkadv import h5io, losses  # noqa: E402
from ntkadv.attacks import closed_form, pgd, suite  # noqa: E402
from ntkadv.attacks.task import AttackSettings, attack_kernel_machine  # noqa: E402
from ntkadv.config import settings_from  # noqa: E402
from ntkadv.data import load_prepared  # noqa: E402
from ntkadv.kernels.analytic import full_spec, kernel_fn_from_spec  # noqa: E402
from ntkadv.kernels.blocked import ntk_gram_blocked  # noqa: E402
from ntkadv.kernels.jacobians import input_jacobian_fn, load_input_jacobian  # noqa: E402
from ntkadv.spectra import predictor  # noqa: E402
from ntkadv.spectra.eigh import eigendecompose  # noqa: E402

SHAPES = {"mnist": (28, 28, 1), "cifar10": (32, 32, 3)}


def settings_for(config: dict, dataset: str, arch: str, n_perm=None) -> AttackSettings:
    """AttackSettings as helpers/attacks.smk builds them (canonical params)."""
    att = config["attacks"]
    family = config["architectures"][arch]["family"]
    keys = ("eps_multipliers", "pgd_steps", "pgd_rel_step", "block_size")
    return settings_from(
        AttackSettings,
        {
            "arch": config["architectures"][arch],
            "eps": config["datasets"][dataset]["eps"],
            "x64": True,
            "predictor": config["predictor"],
            "budget": att["budget"].get(family, {}),
            **{k: att[k] for k in keys},
            "n_gradient_check": att.get("n_gradient_check", 4),
            "null_permutations": att.get("null_permutations", 2)
            if n_perm is None
            else n_perm,
            "seed": config.get("seed", 0),
        },
    )


def clock() -> float:
    """CPU seconds of this process: the jobs run XLA on one thread, and the machine
    is shared, so CPU time (not wall time) is what the bound is compared with."""
    return time.process_time()


def random_caches(kernel_fn, config: dict, dataset: str, arch: str, n: int, m: int):
    """(data, k_test_train, spectrum, jacobian) of random images and targets of the
    dataset's shape, built in memory as the kernel rules build them."""
    spec = config["datasets"][dataset]
    k = len(spec["classes"])
    rng = np.random.default_rng(0)
    data = {"attrs": {"task": "binary" if k == 2 else "multiclass"}}
    for split, size in (("train", n), ("test", m)):
        data[f"x_{split}"] = rng.uniform(size=(size, *SHAPES[spec["source"]]))
        labels = rng.integers(0, k, size)
        data[f"y_{split}"] = (
            (2.0 * labels - 1.0)[:, None] if k == 2 else np.eye(k)[labels]
        )
    family = config["architectures"][arch]["family"]
    block = config["kernels"]["block_size"]
    x_train, x_test = data["x_train"], data["x_test"]
    gram = ntk_gram_blocked(kernel_fn, x_train, None, block)
    k_test = ntk_gram_blocked(kernel_fn, x_test, x_train, block, symmetric=False)
    eig = eigendecompose(gram)
    jac = input_jacobian_fn(kernel_fn, family)(x_test, x_train, block)
    return data, k_test, (eig.eigvals, eig.eigvecs), jac


def file_caches(r: Path, dataset: str, arch: str):
    """(data, k_test_train, spectrum, jacobian) from a workflow's results/ `r`."""
    data = load_prepared(r / f"data/{dataset}.h5")
    k_test = h5io.read(r / f"ntk/{dataset}/{arch}/gram.h5", ["k_test_train"])
    eig = h5io.read(r / f"spectra/{dataset}/{arch}/eigh.h5", ["eigvals", "eigvecs"])
    jac = load_input_jacobian(r / f"ntk/{dataset}/{arch}/jacobian.h5")
    return data, k_test["k_test_train"], (eig["eigvals"], eig["eigvecs"]), jac


def before(kernel_fn, data, k_test, spectrum, jac, s: AttackSettings) -> float:
    """The previous attack_ntk: true labels only, eager PGD per job, 50 x 50 blocks."""
    from ntkadv.spectra.predictor import input_gradient_fn, predictor_fn

    task = data["attrs"]["task"]
    p = s.predictor
    taus, times = predictor.time_grid(
        float(spectrum[0][0]), p.lr, p.tau_log10_min, p.tau_log10_max, p.tau_num
    )
    plan = suite.make_plan(taus, times, s.eps, s, data["x_test"].shape[0])
    m, bs = plan.n_eval, s.block_size
    x_train = np.asarray(data["x_train"], np.float64)
    x_eval = np.asarray(data["x_test"][:m], np.float64)
    y = np.asarray(data["y_test"][:m], np.float64)
    start = clock()
    coefs = predictor.coefficients_path(spectrum, data["y_train"], times, p.lr)
    f_clean = np.einsum("mn,tnk->tmk", k_test[:m], coefs)
    need = sorted(set(plan.time_idx) | set(plan.pgd_time_idx))
    k = coefs.shape[2]
    grads = np.asarray(jac.contract(np.concatenate([coefs[j] for j in need], 1)))
    grad_f = {j: grads[:m, :, i * k : (i + 1) * k] for i, j in enumerate(need)}
    x = x_eval.reshape(m, -1)
    points = []
    for j in plan.time_idx:
        dirs = [closed_form.fgsm_direction(f_clean[j], grad_f[j], y, task)]
        dirs += [
            closed_form.first_order_direction(f_clean[j], grad_f[j], meth)
            for meth in closed_form.FIRST_ORDER[task]
        ]
        for e in plan.eps_list(0, j):
            points += [closed_form.perturb(x, d, plan.eps_values[e]) for d in dirs]
    grad_fn = jax.jit(pgd.loss_gradient_fn(kernel_fn, task))
    for j in plan.pgd_time_idx:
        g0 = losses.loss_input_gradient(f_clean[j], grad_f[j], y, task)
        for e in plan.eps_list(0, j, pgd=True):
            eps = plan.eps_values[e]
            points.append(
                pgd.pgd(
                    kernel_fn,
                    x,
                    x_train,
                    coefs[j],
                    y,
                    task,
                    eps,
                    plan.pgd_rel_step * eps,
                    plan.pgd_steps,
                    bs,
                    init_grad=g0,
                    grad_fn=grad_fn,
                )  # fmt: skip
            )
    ntk_gram_blocked(
        kernel_fn, np.concatenate(points).reshape(-1, *x_eval.shape[1:]), x_train, bs
    )
    n_check = min(s.n_gradient_check, m)
    for j in sorted({need[len(need) // 2], len(taus) - 1}) if n_check else []:
        xe, xt, cj = (jnp.asarray(a) for a in (x_eval[:n_check], x_train, coefs[j]))
        np.asarray(input_gradient_fn(kernel_fn, xt, cj)(xe))
        np.asarray(predictor_fn(kernel_fn, xt, cj)(xe))
        np.asarray(grad_fn(xe, jnp.asarray(y[:n_check]), xt, cj))
    return clock() - start


def rates(kernel_fn, data, s: AttackSettings) -> dict:
    """Seconds per kernel row and per PGD gradient row on one block of the suite's
    shape (jitted, after compilation)."""
    task = data["attrs"]["task"]
    x_train = np.asarray(data["x_train"], np.float64)
    k = np.asarray(data["y_train"]).shape[1]
    b = s.budget.block_size or s.block_size
    d = int(np.prod(x_train.shape[1:]))
    xb = np.resize(np.asarray(data["x_test"], np.float64).reshape(-1, d), (b, d))
    rows = suite.kernel_rows_fn(kernel_fn, x_train, b)
    rows(xb)
    t_rows, _ = timed(lambda: rows(xb))
    yb = np.resize(np.asarray(data["y_test"], np.float64), (b, k))
    step = jax.jit(pgd.loss_gradient_fn(kernel_fn, task))
    args = (jnp.asarray(xb.reshape(b, *x_train.shape[1:])), jnp.asarray(yb))
    c = jnp.asarray(np.random.default_rng(0).normal(size=(x_train.shape[0], k)))
    step(*args, jnp.asarray(x_train), c).block_until_ready()
    t_grad, _ = timed(lambda: step(*args, jnp.asarray(x_train), c))
    return {"fwd": t_rows / b, "grad": t_grad / b, "n": x_train.shape[0]}


def lower_bound(data, spectrum, jac, s: AttackSettings, rate, random_sign) -> dict:
    """Contraction (timed) + kernel rows + PGD steps at the measured `rate`s."""
    task = data["attrs"]["task"]
    p = s.predictor
    taus, times = predictor.time_grid(
        float(spectrum[0][0]), p.lr, p.tau_log10_min, p.tau_log10_max, p.tau_num
    )
    plan = suite.make_plan(taus, times, s.eps, s, data["x_test"].shape[0])
    m, sets = plan.n_eval, 1 + plan.n_perm
    fo = len(closed_form.FIRST_ORDER[task])
    closed = sum(
        len(plan.eps_list(st, j)) * (1 + (fo if st == 0 else 0))
        for st in range(sets)
        for j in plan.time_idx
    )
    if random_sign:
        closed += len({e for j in plan.time_idx for e in plan.eps_list(0, j)})
    pgd_jobs = sum(
        len(plan.eps_list(st, j, pgd=True))
        for st in range(sets)
        for j in plan.pgd_times(st)
    )
    k = np.asarray(data["y_train"]).shape[1]
    need = sorted(set(plan.time_idx) | set(plan.pgd_time_idx))
    c = np.random.default_rng(0).normal(size=(rate["n"], sets * len(need) * k))
    t_contract, _ = timed(lambda: jac.eval_subset(0, m).contract(c))
    pgd_rows = pgd_jobs * m
    bound = (
        t_contract
        + closed * m * rate["fwd"]
        + pgd_rows * ((plan.pgd_steps - 1) * rate["grad"] + rate["fwd"])
    )
    return {"bound": bound, "contract": t_contract, "rows": closed * m, "pgd": pgd_rows}


def loop_variants(kernel_fn, data, s: AttackSettings, arch: str) -> None:
    """PGD steps as a Python loop of a jitted step, a lax.fori_loop or unrolled, on
    one block of the suite's shape (compile and run CPU seconds)."""
    task = data["attrs"]["task"]
    x_train = jnp.asarray(data["x_train"], jnp.float64)
    k = np.asarray(data["y_train"]).shape[1]
    b = s.budget.block_size or s.block_size
    d = int(np.prod(x_train.shape[1:]))
    x0 = jnp.asarray(np.resize(np.asarray(data["x_test"], np.float64), (b, d)))
    y = jnp.asarray(np.resize(np.asarray(data["y_test"], np.float64), (b, k)))
    c = jnp.asarray(np.random.default_rng(0).normal(size=(x_train.shape[0], 3 * k)))
    cidx, eps = jnp.arange(b) % 3, jnp.full(b, s.eps)
    steps = s.budget.pgd_steps or s.pgd_steps
    runs = {}
    for loop in ("python", "fori", "unrolled"):
        fn = pgd.pgd_rows_fn(kernel_fn, task, steps, x_train.shape[1:], loop)
        args = (x0, y, jnp.ones_like(x0), cidx, eps, eps * s.pgd_rel_step, x_train, c)
        t_first, _ = timed(lambda fn=fn, args=args: jax.block_until_ready(fn(*args)))
        t_run, _ = timed(lambda fn=fn, args=args: jax.block_until_ready(fn(*args)))
        print(
            f"  PGD-{steps} loop {loop:8s} {b} rows: first call {t_first:6.2f} s, "
            f"then {t_run:6.2f} s ({t_run / b * 1e3:.2f} ms per row)"
        )
        runs[loop] = t_run
    best = min(runs, key=runs.get)
    what = f"{arch} PGD-{steps} block of {b} rows, fori loop (the suite's)"
    emit("attacks", what, runs["fori"], runs[best], f"fastest loop form ({best})")


def once(kernel_fn, caches, st: AttackSettings, new: bool) -> tuple[float, float]:
    """(CPU, wall) seconds of one `attack_kernel_machine` (new) or `before` call."""
    start, wall = clock(), time.perf_counter()
    (attack_kernel_machine if new else before)(kernel_fn, *caches, st)
    return clock() - start, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="results")
    parser.add_argument("--config", default=str(REPO / "config.yaml"))
    parser.add_argument("--dataset", default="cifar2")
    parser.add_argument("--archs", default="fc1,conv1")
    parser.add_argument("--skip-before", action="store_true")
    parser.add_argument(
        "--loops", action="store_true", help="also compare PGD loop forms"
    )
    parser.add_argument(
        "--random", action="store_true", help="random inputs instead of --results"
    )
    parser.add_argument("--n-train", type=int, default=200, help="with --random")
    parser.add_argument("--n-test", type=int, default=50, help="with --random")
    parser.add_argument(
        "--quick", action="store_true", help="--random, --skip-before, no P = 0"
    )
    args = parser.parse_args()
    args.random |= args.quick
    args.skip_before |= args.quick
    config = yaml.safe_load(Path(args.config).read_text())
    print(f"{args.dataset}: jax {jax.__version__}, one thread")
    for arch in args.archs.split(","):
        s = settings_for(config, args.dataset, arch)
        kernel_fn = kernel_fn_from_spec(full_spec(s.arch))
        if args.random:
            caches = random_caches(
                kernel_fn, config, args.dataset, arch, args.n_train, args.n_test
            )
        else:
            caches = file_caches(Path(args.results), args.dataset, arch)
        data, k_test, spectrum, jac = caches
        print(
            f"{arch}: n_train {data['x_train'].shape[0]}, n_test "
            f"{data['x_test'].shape[0]}" + (" (random inputs)" if args.random else "")
        )
        rate = rates(kernel_fn, data, s)
        print(
            f"{arch} ({s.arch['family']}): kernel rows {rate['n'] / rate['fwd']:.3g} "
            f"entries/s, PGD gradient rows {rate['n'] / rate['grad']:.3g} entries/s"
        )
        if args.loops:
            loop_variants(kernel_fn, data, s, arch)
        variants = [(f"after, P = {s.null_permutations}", None, True)]
        if not args.quick:
            variants.insert(0, ("after, P = 0", 0, True))
        if not args.skip_before:
            variants.insert(0, ("before (true labels only)", 0, False))
        for label, n_perm, new in variants:
            st = settings_for(config, args.dataset, arch, n_perm)
            lb = lower_bound(data, spectrum, jac, st, rate, random_sign=new)
            # the suite's jitted functions are cached per process: the first call
            # compiles (what a job pays once), the second is the compiled run
            first = once(kernel_fn, caches, st, new)[0] if new else None
            t, wall = once(kernel_fn, caches, st, new)
            print(
                f"  {label:26s} {t:7.2f} s CPU ({wall:.1f} s wall), "
                f"bound {lb['bound']:7.2f} s "
                f"(contraction {lb['contract']:.2f} s, {lb['rows']} kernel rows, "
                f"{lb['pgd']} PGD rows)  ratio {t / lb['bound']:5.2f}",
                flush=True,
            )
            size = f"(m={data['x_test'].shape[0]}, n={data['x_train'].shape[0]})"
            kind = "Jacobian contraction + kernel rows, PGD steps at measured row rates"
            emit("attacks", f"{arch} {label} {size}", t, lb["bound"], kind)
            if first is not None:
                print(
                    f"    first call {first:.2f} s CPU: XLA compilation ~"
                    f"{first - t:.2f} s, paid once per job"
                )
                what = f"{arch} {label} first call, incl. XLA compilation {size}"
                emit("attacks", what, first, lb["bound"], kind)


if __name__ == "__main__":
    main()
