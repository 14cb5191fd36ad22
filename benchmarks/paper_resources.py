"""Paper scale on paper: the resources every rule requests for config/paper.yaml.

Runs ``snakemake -n`` on config/paper.yaml (no job runs), reads each job's
``resources:`` as the workflow computes them (workflow/rules/helpers/resources.smk
over ntkadv.sizing, from the measured per-unit costs stated there), and prints one
markdown row per rule: jobs, GPU, the largest mem_mb and runtime request, the summed
runtime, and the disk of one job (its ``disk_mb`` request, else its largest output
from the array shapes of ntkadv.kernels / ntkadv.spectra). The table in
docs/paper_scale.md is this script's output.

Run: ``.venv/bin/python benchmarks/paper_resources.py [--configfile config/paper.yaml]``
"""

from __future__ import annotations

import argparse
import collections
import math
import re
import subprocess
import sys
from pathlib import Path

import yaml

from bench_scaling import scaling_table  # benchmarks/ (this script's folder)
from ntkadv import sizing
from ntkadv.configcheck import resolve_extends

REPO = Path(__file__).resolve().parents[1]
GB = 1e9


def disk_gb(rule: str, entries: list[dict[str, float]], config: dict) -> float | None:
    """Disk of one job of `rule`: its ``disk_mb`` request where the workflow declares
    one (input-Jacobian, dynamics runs: ntkadv.sizing), else the largest output's
    array shapes x dtype (Gram, eigendecomposition)."""
    requests = [e["disk_mb"] for e in entries if "disk_mb" in e]
    if requests:
        return max(requests) * 2**20 / GB
    ds = config["datasets"]
    sizes = [
        (ds[name]["n_train"], ds[name]["n_test"])
        for name in config["kernels"]["datasets"]
    ]
    if rule == "compute_ntk_gram":  # (n + m) x n float64
        return max((n + m) * n * 8 for n, m in sizes) / GB
    if rule == "eigendecompose_gram":  # n x n eigenvectors + n eigenvalues, float64
        return max(n * n * 8 + n * 8 for n, _ in sizes) / GB
    return None


def dry_run(configfile: str, *extra: str) -> str:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "--configfile",
            configfile,
            "--cores",
            "1",
            "--forceall",
            *extra,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout


def parse(text: str) -> dict[str, list[dict[str, float]]]:
    jobs: dict[str, list[dict[str, float]]] = collections.defaultdict(list)
    rule = None
    for line in text.splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):", line.strip()):
            rule = m.group(1)
            jobs[rule].append({})
        elif rule and line.strip().startswith("resources:"):
            for key, value in re.findall(r"(\w+)=([\d.]+)", line):
                jobs[rule][-1][key] = float(value)
    return jobs


def parse_wildcards(text: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job of a dry run."""
    jobs: list[tuple[str, dict[str, str]]] = []
    for line in text.splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):", line.strip()):
            jobs.append((m.group(1), {}))
        elif jobs and line.strip().startswith("wildcards:"):
            jobs[-1][1].update(re.findall(r"(\w+)=([\w.-]+)", line))
    return jobs


#: Rules run as evaluation-point shards (+ a merge) when a job exceeds the limit:
#: shard rule -> the rule whose job they split.
SHARD_RULES = {
    "attack_ntk_shard": "attack_ntk",
    "score_features_shard": "score_features",
}
#: Checkpointed training rules: a longer job requests the limit on every attempt.
RESUMABLE_RULES = ("train_dynamics_network", "train_linearized_network")
#: A limit no job reaches (the unsplit estimates).
NO_LIMIT = "resources={max_job_min: 1000000000000}"


def split_table(text: str, unsplit: str, limit: float) -> str:
    """Markdown: how the jobs above `limit` minutes run, from a dry run at the
    limit (`text`) and one without (`unsplit`): per sharded kernel its shards and
    their longest request, per resumable job its attempts (ceil(estimate / limit))."""
    lines = [
        "| rule | job | estimate (min) | jobs / attempts at the limit |"
        " longest request (min) |",
        "|---|---|---:|---:|---:|",
    ]
    whole = [
        (rule, wc, res.get("runtime", 0.0))
        for (rule, wc), res in zip(
            parse_wildcards(unsplit), parse_resources(unsplit), strict=True
        )
    ]
    shards: dict[tuple, list[float]] = collections.defaultdict(list)
    for (rule, wc), res in zip(
        parse_wildcards(text), parse_resources(text), strict=True
    ):
        if rule in SHARD_RULES:
            key = (SHARD_RULES[rule], wc["dataset"], wc["arch"])
            shards[key].append(res.get("runtime", 0.0))
    for rule, wc, est in sorted(whole, key=lambda j: (j[0], list(j[1].values()))):
        job = "/".join(wc.values())
        if (rule, wc.get("dataset"), wc.get("arch")) in shards:
            runtimes = shards[rule, wc["dataset"], wc["arch"]]
            lines.append(
                f"| {rule} | {job} | {est:.0f} | {len(runtimes)} shards + merge |"
                f" {max(runtimes):.0f} |"
            )
        elif rule in RESUMABLE_RULES and est > limit:
            lines.append(
                f"| {rule} | {job} | {est:.0f} | {math.ceil(est / limit)} attempts |"
                f" {limit:.0f} |"
            )
        elif est > limit:
            lines.append(f"| {rule} | {job} | {est:.0f} | not split | {est:.0f} |")
    return "\n".join(lines)


def parse_resources(text: str) -> list[dict[str, float]]:
    """resources of every job of a dry run, in job order (`parse_wildcards`)."""
    out: list[dict[str, float]] = []
    for line in text.splitlines():
        if re.match(r"^(?:local)?rule (\w+):", line.strip()):
            out.append({})
        elif out and line.strip().startswith("resources:"):
            out[-1].update(
                (k, float(v)) for k, v in re.findall(r"(\w+)=([\d.]+)", line)
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", default="config/paper.yaml")
    parser.add_argument("--scaling-configfile", default="config/paper_kernels.yaml")
    args = parser.parse_args()
    config = resolve_extends(
        yaml.safe_load((REPO / args.configfile).read_text()), str(REPO)
    )
    text = dry_run(args.configfile)
    jobs = parse(text)
    print(
        f"Resources requested for {args.configfile} "
        "(first attempt; each retry doubles)\n"
    )
    print(
        "| rule | jobs | GPU | max mem_mb | max runtime (min) | sum runtime (h) |"
        " disk per job (GB) |"
    )
    print("|---|---:|:-:|---:|---:|---:|---:|")
    total_h = 0.0
    for rule, entries in sorted(
        jobs.items(), key=lambda kv: (-sum(e.get("runtime", 0) for e in kv[1]), kv[0])
    ):
        if rule == "all" or not any("runtime" in e or "mem_mb" in e for e in entries):
            continue  # local CPU jobs (tables, figures, claims) request nothing
        mem = max(e.get("mem_mb", 0) for e in entries)
        rt = [e.get("runtime", 0) for e in entries]
        gpu = "yes" if any(e.get("gpu") for e in entries) else ""
        disk = disk_gb(rule, entries, config)
        total_h += sum(rt) / 60
        print(
            f"| {rule} | {len(entries)} | {gpu} | {mem:.0f} | {max(rt):.0f} | "
            f"{sum(rt) / 60:.1f} | {'' if disk is None else f'{disk:.1f}'} |"
        )
    print(f"\nSum of runtime requests: {total_h:.0f} job-hours.")
    limit = config.get("resources", {}).get("max_job_min", sizing.MAX_JOB_MIN)
    print(
        f"\nJobs whose estimate exceeds resources.max_job_min = {limit:.0f} min "
        "(sharded: the rule's shards and their merge replace the job; resumable: "
        "the job requests the limit on every attempt)\n"
    )
    print(split_table(text, dry_run(args.configfile, "--config", NO_LIMIT), limit))
    kernels = resolve_extends(
        yaml.safe_load((REPO / args.scaling_configfile).read_text()), str(REPO)
    )
    print(f"\n## Measured scaling: {args.scaling_configfile}\n")
    print(scaling_table(kernels, parse_wildcards(dry_run(args.scaling_configfile))))


if __name__ == "__main__":
    main()
