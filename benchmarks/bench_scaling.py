"""Measured scaling of the kernel half (issue 24): CPU seconds and peak RSS of every
kernel-half rule at >= 3 training-set sizes, fitted exponents, the 10k extrapolation.

``run``: for each n_train (default 500, 1000, 2000) a config is generated from
config.yaml (the laptop's attack plans; the features' top_k 100 without the spread
indices; CIFAR-2 with n_test 50, CONV features and attacks on 25 points; top-r null
permutations 4, the paper's, n_val 25; sizes and plans cut so that the three series
fit ~20 CPU-minutes on a shared machine, issue 24's deadline) and
Snakemake runs, with ``--cores 1`` in its own directory, exactly the jobs of the
targets below: compute_ntk_gram, compute_ntk_input_jacobian (the storage of today's
main: dense CONV tiles, factored FC), eigendecompose_gram, score_features, attack_ntk
for fc2 and conv1 and evaluate_topr_kernels for fc2. Each job's ``benchmark:`` file
(results/benchmarks/<rule>/cifar2/<arch>.tsv: ``cpu_time``, ``max_rss``, ``s``) is
collected with ``uptime`` (the machine is shared: CPU time of the process, not wall,
is what the fits use) into ``--raw`` (JSON).

``fit``: for each (rule, family) the CPU seconds are fitted as ``a · U^b`` by
log-log least squares, where U is the rule's work count in its size variables
(`ntkadv.sizing.work_units`: Gram (n + m)·n, Jacobian m·n, eigh n³, features
K·m·n, attacks m·n·(closed-form rows + 2.65 · PGD row-steps), top-r n²·n_val; a
fitted b near 1 says the count is the cost's shape); the exponent in n_train alone
and the fit's residual are printed too. Peak RSS is fitted as ``r0 + r1 · V``
(V the rule's dominant float count, `ntkadv.sizing.memory_floats`). The rates
(a, b, the per-unit rate at the largest size, r0, r1) are written with the commit,
machine and date to scripts/ntkadv/measured_rates.json, which `ntkadv.sizing` reads.

``table``: the markdown scaling table of docs/paper_scale.md (benchmarks/
paper_resources.py prints it too).

Run (from the repo root, one core, ~20 CPU-minutes)::

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
RULES = (
    "compute_ntk_gram",
    "compute_ntk_input_jacobian",
    "eigendecompose_gram",
    "score_features",
    "attack_ntk",
    "evaluate_topr_kernels",
)
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


def read_benchmark(path: Path) -> dict[str, float]:
    with path.open() as fh:
        row = next(csv.DictReader(fh, delimiter="\t"))
    return {k: float(row[k]) for k in ("s", "max_rss", "cpu_time")}


def run(sizes: list[int], workdir: Path, raw: Path) -> None:
    """Run the targets at every size; append each job's benchmark to `raw`."""
    records = json.loads(raw.read_text()) if raw.exists() else {"runs": []}
    env = dict(os.environ, PYTHONPATH=str(REPO / "scripts"))
    for n in sizes:
        run_dir = workdir / f"n{n}"
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg = run_dir / "config.yaml"
        config = size_config(n)
        cfg.write_text(yaml.safe_dump(config, sort_keys=False))
        load_before = uptime()
        cmd = [
            sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
            "--directory", str(run_dir), "--configfile", str(cfg), "--cores", "1",
            *targets(),
        ]  # fmt: skip
        print(f"n_train {n}: {load_before}", flush=True)
        subprocess.run(cmd, check=True, env=env, cwd=REPO)
        load_after = uptime()
        for rule in RULES:
            for family, arch in ARCHS.items():
                tsv = run_dir / f"results/benchmarks/{rule}/{DATASET}/{arch}.tsv"
                if not tsv.exists():
                    continue
                records["runs"].append(
                    {
                        "rule": rule,
                        "family": family,
                        "arch": arch,
                        "n_train": n,
                        "sizes": sizing.work_sizes(rule, family, config, DATASET),
                        **read_benchmark(tsv),
                        "uptime_before": load_before,
                        "uptime_after": load_after,
                        "commit": commit(),
                    }
                )
        raw.write_text(json.dumps(records, indent=1) + "\n")


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
            floats = np.array([sizing.memory_floats(rule, r["sizes"]) for r in series])
            rss = np.array([r["max_rss"] for r in series])
            r1, r0 = np.polyfit(floats, rss, 1)
            rates.setdefault(rule, {})[family] = {
                "a": a,
                "b": b,
                "log_residual": resid,
                "exponent_n_train": b_n,
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
                f"{rule:28s} {family:4s} cpu_s={list(np.round(cpu, 1))} "
                f"exponent(U)={b:.3f} exponent(n)={b_n:.3f} "
                f"log-residual={resid:.3f} rss_mb={list(np.round(rss))}"
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
            "how": "benchmarks/bench_scaling.py: CPU seconds of the job's process "
            "(Snakemake benchmark cpu_time) and max_rss, --cores 1",
        },
        "rates": rates,
    }
    out.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    return data


def job_cpu_s(rule: str, config: dict, dataset: str, arch: dict) -> float:
    """Extrapolated CPU seconds of one job of `config` (the measured rates x the
    CONV depth factor; the input-Jacobian as measured today, not its request)."""
    family = sizing.RATE_FAMILY[arch["family"]]
    sizes = sizing.work_sizes(rule, arch["family"], config, dataset)
    return sizing.measured_cpu_s(rule, family, sizes) * sizing.depth_factor(rule, arch)


def scaling_table(config: dict, jobs: list[tuple[str, dict]]) -> str:
    """Markdown: the measured series and fits per (rule, kernel), then the
    extrapolated cost of every job of `config` by stage (`jobs`: (rule,
    wildcards) of a dry run) and the wall on one 2-core machine."""
    data = sizing.measured_rates()
    meas = data["measured"]
    lines = [
        f"Measured at {', '.join(meas['commits'])} on {meas['machine']}, "
        f"{meas['date']} ({meas['how']}); load during the series: "
        + "; ".join(f"`{u.split('load average:')[-1].strip()}`" for u in meas["load"])
        + ".\n",
        "| rule | kernel | CPU-s at n = 0.5k / 1k / 2k | peak RSS (MB) | exponent in U "
        "(in n) | log-residual | U at 10k / at 2k | extrapolated CPU-s at 10k |",
        "|---|---|---|---|---|---:|---:|---:|",
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
                f"{u / r['largest_units']:.1f}x | "
                f"{job_cpu_s(rule, config, DATASET, spec):.0f} |"
            )
    lines.append(
        f"\nU is the rule's work count (`ntkadv.sizing.work_units`) at CIFAR-2 "
        f"n_train {ds['n_train']}, n_test {ds['n_test']} and this config's plans, "
        "relative to the largest measured size.\n"
    )
    per_rule: dict[str, list[float]] = {}
    for rule, wc in jobs:
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
    parser.add_argument("what", choices=("run", "fit"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, 2000])
    parser.add_argument("--workdir", type=Path, default=REPO.parent / "scaling-runs2")
    parser.add_argument("--raw", type=Path, default=RAW)
    parser.add_argument("--out", type=Path, default=sizing.RATES_FILE)
    args = parser.parse_args()
    if args.what == "run":
        run(args.sizes, args.workdir, args.raw)
    else:
        fit(args.raw, args.out)


if __name__ == "__main__":
    main()
