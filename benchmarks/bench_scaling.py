"""Measured scaling of the kernel half (issue 24): CPU seconds and peak RSS of every
kernel-half rule at >= 3 training-set sizes, fitted exponents, the 10k extrapolation.

``run``: for each n_train (default 1000, 2000, 4000) a config is generated from
config.yaml (the laptop's attack plans; the features' top_k 100 without the spread
indices; CIFAR-2 with n_test 50, CONV features and attacks on 25 points; top-r null
permutations 4, the paper's, n_val 25; sizes and plans cut so that the three series
fit ~15 CPU-minutes at 1k / 2k / 4k on an idle core) and Snakemake runs, with
``--cores 1`` in its own directory, exactly the jobs of the targets below:
compute_ntk_gram, compute_ntk_input_jacobian (the storage of the measured commit:
factored FC, implicit CONV), eigendecompose_gram, score_features, attack_ntk for fc2
and conv1 and evaluate_topr_kernels for fc2. Each job's ``benchmark:`` file (wall
``s``) and the exact CPU seconds and peak RSS its log ends with (getrusage,
scripts/_common.py; the benchmark's own cpu_time / max_rss are sampled every 30 s and
miss a job's end) are collected with ``uptime`` (the machine is shared: CPU time of
the process, not wall, is what the fits use) into ``--raw`` (JSON; ``collect``
rebuilds it from the run directories).

``fit``: for each (rule, family) the CPU seconds are fitted as ``a · U^b`` by
log-log least squares, where U is the rule's work count in its size variables
(`ntkadv.sizing.work_units`: Gram (n + m)·n, Jacobian m·n, eigh n³, features
K·m·n, attacks m·n·(closed-form rows + 2.65 · PGD row-steps), top-r n²·n_val; a
fitted b near 1 says the count is the cost's shape); the exponent in n_train alone
and the fit's residual are printed too. Peak RSS is fitted as ``r0 + r1 · V`` after
subtracting the arrays of known size (`ntkadv.sizing.memory_floats`,
`memory_extra_mb`). The rates
(a, b, the per-unit rate at the largest size, r0, r1) are written with the commit,
machine and date to scripts/ntkadv/measured_rates.json, which `ntkadv.sizing` reads.

``table``: the markdown scaling table of docs/paper_scale.md (benchmarks/
paper_resources.py prints it too).

Run (from the repo root, one core, ~15 CPU-minutes, ~16 min of wall at 2026-12-07)::

    PYTHONPATH=scripts .venv/bin/python benchmarks/bench_scaling.py run
    PYTHONPATH=scripts .venv/bin/python benchmarks/bench_scaling.py fit
"""

from __future__ import annotations

import argparse
import copy
import csv
import datetime
import json
import math
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from ntkadv import sizing
from ntkadv.configcheck import resolve_extends

REPO = Path(__file__).resolve().parents[1]
DATASET = "cifar2"
ARCHS = {"fc": "fc2", "conv": "conv1"}
RULES = sizing.MEASURED_RULES  # every kernel-half rule whose request is measured
#: Test points (FC features and attacks, top-r: half rank, half evaluate) and CONV
#: evaluation points (features and attacks). Every rule's cost is linear in them
#: (one kernel row per point), so they are kept small and fixed: the series vary n.
N_TEST, N_CONV = 50, 25
RAW = REPO.parent / "scaling-runs2" / "scaling_runs.json"


def size_config(n_train: int) -> dict:
    """config.yaml with CIFAR-2 at (n_train, N_TEST) and absolute data dirs."""
    config = resolve_extends(
        yaml.safe_load((REPO / "config.yaml").read_text()), str(REPO)
    )
    config = copy.deepcopy(config)
    config["data"]["search_dirs"] = [
        str((REPO / d).resolve()) for d in config["data"]["search_dirs"]
    ]
    config["datasets"][DATASET].update(n_train=n_train, n_test=N_TEST)
    ft, att = config["features"], config["attacks"]
    ft["topr"].update(null_permutations=4, n_val=N_TEST // 2)  # paper's 4; half
    ft["spread"] = {family: 0 for family in ft["spread"]}  # K = top_k = 100
    ft["n_eval"]["conv"] = att["budget"]["conv"]["n_eval"] = N_CONV
    return config


def targets() -> list[str]:
    out = []
    for arch in ARCHS.values():
        out += [
            f"results/attacks/{DATASET}/{arch}/accuracy.csv",
            f"results/features/{DATASET}/{arch}/scores.h5",
        ]
    topr = ARCHS["fc"]
    return out + [f"results/features/{DATASET}/{topr}/topr.h5"]


#: The exit line every job logs (scripts/_common.py: getrusage, exact; Snakemake's
#: benchmark samples every 30 s after the first 15 s and keeps the last sample, so
#: its cpu_time and max_rss can miss the end of a job).
EXIT_LINE = re.compile(r"peak RSS ([\d.]+) MB, CPU time ([\d.]+) s")


def read_job(run_dir: Path, rule: str, arch: str) -> dict[str, float] | None:
    """CPU seconds and peak RSS (the job's log) and wall seconds (its benchmark)."""
    log = run_dir / f"results/logs/{rule}/{DATASET}/{arch}.log"
    tsv = run_dir / f"results/benchmarks/{rule}/{DATASET}/{arch}.tsv"
    if not (log.exists() and tsv.exists()):
        return None
    found = EXIT_LINE.findall(log.read_text())
    if not found:
        return None
    with tsv.open() as fh:
        wall = float(next(csv.DictReader(fh, delimiter="\t"))["s"])
    rss, cpu = found[-1]
    return {"cpu_time": float(cpu), "max_rss": float(rss), "s": wall}


def run(sizes: list[int], workdir: Path, raw: Path) -> None:
    """Run the targets at every size (with `uptime` before and after, in the run
    directory), then collect every size's jobs into `raw`."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "scripts"))
    for n in sizes:
        run_dir = workdir / f"n{n}"
        run_dir.mkdir(parents=True, exist_ok=True)
        config = size_config(n)
        cfg = run_dir / "config.yaml"
        cfg.write_text(yaml.safe_dump(config, sort_keys=False))
        (run_dir / "uptime.txt").write_text(uptime() + "\n")
        cmd = [
            sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
            "--directory", str(run_dir), "--configfile", str(cfg), "--cores", "1",
            *targets(),
        ]  # fmt: skip
        subprocess.run(cmd, check=True, env=env, cwd=REPO)
        with (run_dir / "uptime.txt").open("a") as fh:
            fh.write(uptime() + "\n")
        collect(workdir, raw)


def collect(workdir: Path, raw: Path) -> None:
    """Every finished job of every run directory n<size>/ into `raw` (JSON)."""
    records = []
    for run_dir in sorted(workdir.glob("n*"), key=lambda p: int(p.name[1:])):
        n = int(run_dir.name[1:])
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        load = (run_dir / "uptime.txt").read_text().splitlines()
        for rule in RULES:
            for family, arch in ARCHS.items():
                job = read_job(run_dir, rule, arch)
                if job is None:
                    continue
                records.append(
                    {
                        "rule": rule,
                        "family": family,
                        "arch": arch,
                        "n_train": n,
                        "sizes": sizing.work_sizes(rule, family, config, DATASET),
                        **job,
                        "uptime_before": load[0],
                        "uptime_after": load[-1],
                        "commit": commit(),
                    }
                )
    raw.write_text(json.dumps({"runs": records}, indent=1) + "\n")


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
        cwd=REPO,
    ).stdout.strip()  # fmt: skip


def loglog_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """y ≈ a · x^b by least squares on logs: (a, b, rms residual of log y)."""
    b, log_a = np.polyfit(np.log(x), np.log(y), 1)
    resid = np.log(y) - (log_a + b * np.log(x))
    return float(math.exp(log_a)), float(b), float(np.sqrt(np.mean(resid**2)))


def fit(raw: Path, out: Path) -> dict:
    """Fit every (rule, family) series of `raw`; write the rates file `out`."""
    runs = json.loads(raw.read_text())["runs"]
    rates: dict = {}
    for rule in RULES:
        for family in ARCHS:
            series = sorted(
                (r for r in runs if r["rule"] == rule and r["family"] == family),
                key=lambda r: r["n_train"],
            )
            if len({r["n_train"] for r in series}) < 3:
                continue
            units = np.array([sizing.work_units(rule, r["sizes"]) for r in series])
            cpu = np.array([r["cpu_time"] for r in series])
            n = np.array([r["n_train"] for r in series], dtype=float)
            a, b, resid = loglog_fit(units, cpu)
            _, b_n, _ = loglog_fit(n, cpu)
            # start-up (imports, jit) + work: t = t0 + c·U; the work's exponent is
            # that of t - t0 (the raw b is pulled below 1 by t0 at small U)
            c, t0 = np.polyfit(units, cpu, 1)
            work = cpu - t0
            b_work = loglog_fit(units, work)[1] if t0 > 0 and (work > 0).all() else b
            floats = np.array([sizing.memory_floats(rule, r["sizes"]) for r in series])
            rss = np.array([r["max_rss"] for r in series])
            extra = np.array([sizing.memory_extra_mb(rule, r["sizes"]) for r in series])
            r1, r0 = np.polyfit(floats, rss - extra, 1)
            rates.setdefault(rule, {})[family] = {
                "a": a,
                "b": b,
                "log_residual": resid,
                "exponent_n_train": b_n,
                "startup_s": float(t0),
                "rate_linear": float(c),
                "exponent_after_startup": float(b_work),
                "rate_at_largest": float(cpu[-1] / units[-1]),
                "largest_units": float(units[-1]),
                "rss_mb0": float(r0),
                "rss_mb_per_float": float(max(r1, 0.0)),
                "series": [
                    {
                        "n_train": int(r["n_train"]),
                        "sizes": r["sizes"],
                        "cpu_s": r["cpu_time"],
                        "wall_s": r["s"],
                        "max_rss_mb": r["max_rss"],
                        "uptime": r["uptime_before"],
                    }
                    for r in series
                ],
            }
            print(
                f"{rule:28s} {family:4s} cpu_s={[round(float(c), 1) for c in cpu]} "
                f"exponent(U)={b:.3f} exponent(n)={b_n:.3f} t0={t0:.1f}s "
                f"exponent(U, t - t0)={b_work:.3f} "
                f"log-residual={resid:.3f} rss_mb={[round(float(v)) for v in rss]}"
            )
    commits = sorted({r["commit"] for r in runs})
    data = {
        "measured": {
            "commits": commits,
            "machine": f"{platform.node()} {platform.machine()} "
            f"{os.cpu_count()} CPUs, {platform.processor() or platform.system()}",
            "date": datetime.date.today().isoformat(),
            "dataset": DATASET,
            "archs": ARCHS,
            "load": sorted({r["uptime_before"] for r in runs}),
            "how": "benchmarks/bench_scaling.py: CPU seconds and peak RSS of each "
            "job's process (getrusage, logged at exit by scripts/_common.py), "
            "--cores 1",
        },
        "rates": rates,
    }
    out.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    return data


def job_cpu_s(rule: str, config: dict, dataset: str, arch: dict) -> float:
    """Extrapolated CPU seconds of one job of `config`: the measured rates x the
    CONV depth factor, once per ε for the feature, attack and top-r jobs (the
    dataset's plus datasets.<d>.extra_eps, `sizing.eps_passes`) plus a dense-family
    consumer's recompute of the gradient tiles (`sizing.jacobian_recompute_min`);
    the input-Jacobian as measured today, not its request."""
    family = sizing.RATE_FAMILY[arch["family"]]
    sizes = sizing.work_sizes(rule, arch["family"], config, dataset)
    cpu = sizing.measured_cpu_s(rule, family, sizes) * sizing.depth_factor(rule, arch)
    if rule in (*sizing.POINT_RULES, "evaluate_topr_kernels"):
        cpu *= sizing.eps_passes(config, dataset)
    if rule in sizing.POINT_RULES:
        recompute = sizing.jacobian_recompute_min(
            sizes["n"], sizes["m"], sizes["d"], arch["family"]
        )
        cpu += recompute * sizing.SECONDS_PER_MIN
    return cpu


def scaling_table(config: dict, jobs: list[tuple[str, dict]]) -> str:
    """Markdown: the measured series and fits per (rule, kernel), then the
    extrapolated cost of every job of `config` by stage (`jobs`: (rule,
    wildcards) of a dry run; a kernel's evaluation-point shards count as its one
    unsharded job) and the wall on one 2-core machine."""
    data = sizing.measured_rates()
    meas = data["measured"]
    measured_n = sorted(
        {p["n_train"] for fam in data["rates"].values() for r in fam.values()
         for p in r["series"]}
    )  # fmt: skip
    sizes = " / ".join(f"{n / 1000:g}k" for n in measured_n)
    lines = [
        f"Measured at {', '.join(meas['commits'])} on {meas['machine']}, "
        f"{meas['date']} ({meas['how']}); load during the series: "
        + "; ".join(f"`{u.split('load average:')[-1].strip()}`" for u in meas["load"])
        + ".\n",
        f"| rule | kernel | CPU-s at n = {sizes} | peak RSS (MB) | exponent in U "
        "(in n) | log-residual | start-up t0 (s); exponent of t - t0 in U | "
        f"U at 10k / at {measured_n[-1] / 1000:g}k | extrapolated CPU-s at 10k |",
        "|---|---|---|---|---|---:|---|---:|---:|",
    ]
    ds = config["datasets"][DATASET]
    for rule, families in data["rates"].items():
        for family, r in families.items():
            arch = ARCHS[family]
            spec = config["architectures"][arch]
            sizes = sizing.work_sizes(rule, family, config, DATASET)
            u = sizing.work_units(rule, sizes)
            cpu = " / ".join(f"{p['cpu_s']:.1f}" for p in r["series"])
            rss = " / ".join(f"{p['max_rss_mb']:.0f}" for p in r["series"])
            lines.append(
                f"| {rule} | {arch} | {cpu} | {rss} | {r['b']:.2f} "
                f"({r['exponent_n_train']:.2f}) | {r['log_residual']:.3f} | "
                f"{r['startup_s']:.1f}; {r['exponent_after_startup']:.2f} | "
                f"{u / r['largest_units']:.1f}x | "
                f"{job_cpu_s(rule, config, DATASET, spec):.0f} |"
            )
    lines.append(
        f"\nU is the rule's work count (`ntkadv.sizing.work_units`) at CIFAR-2 "
        f"n_train {ds['n_train']}, n_test {ds['n_test']} and this config's plans, "
        "relative to the largest measured size.\n"
    )
    per_rule: dict[str, list[float]] = {}
    sharded = set()
    for rule, wc in jobs:
        base = rule.removesuffix("_shard")  # a kernel's shards: one job here
        if base != rule and (base, wc["dataset"], wc["arch"]) not in sharded:
            sharded.add((base, wc["dataset"], wc["arch"]))
            rule = base
        if rule not in sizing.MEASURED_RULES:
            continue
        arch = config["architectures"][wc["arch"]]
        per_rule.setdefault(rule, []).append(
            job_cpu_s(rule, config, wc["dataset"], arch)
        )
    lines += [
        "| stage (rule) | jobs | CPU-h (extrapolated) | longest job (h) |",
        "|---|---:|---:|---:|",
    ]
    total = longest = 0.0
    for rule in sizing.MEASURED_RULES:
        cpu = per_rule.get(rule, [])
        if not cpu:
            continue
        total += sum(cpu)
        longest = max(longest, max(cpu))
        lines.append(
            f"| {rule} | {len(cpu)} | {sum(cpu) / 3600:.1f} | {max(cpu) / 3600:.2f} |"
        )
    wall = max(total / 2, longest)
    lines.append(
        f"| **total** | {sum(len(v) for v in per_rule.values())} | "
        f"**{total / 3600:.1f}** | {longest / 3600:.2f} |\n\n"
        f"Extrapolated wall on one 2-core machine (`--cores 2`, one core per job): "
        f"max(CPU-h / 2, longest job) = **{wall / 3600:.1f} h** (one process per core; "
        "data preparation, tables and figures not included: minutes)."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("run", "collect", "fit"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 4000])
    parser.add_argument("--workdir", type=Path, default=REPO.parent / "scaling-runs2")
    parser.add_argument("--raw", type=Path, default=RAW)
    parser.add_argument("--out", type=Path, default=sizing.RATES_FILE)
    args = parser.parse_args()
    if args.what == "run":
        run(args.sizes, args.workdir, args.raw)
    elif args.what == "collect":
        collect(args.workdir, args.raw)
    else:
        fit(args.raw, args.out)


if __name__ == "__main__":
    main()
