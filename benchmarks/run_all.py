"""Run every benchmark and print one table: each heavy stage's time vs its bound.

Usage: ``./uvw run python benchmarks/run_all.py [--quick] [--only NAME ...]``.
Each benchmark runs in its own interpreter (thread pinning and XLA flags must be set
before jax starts) with ``--quick`` (laptop shapes, few repeats) and prints ``BENCH``
lines (benchmarks/_bench.py); the table lists time, bound, ratio (time / bound) and
what the bound is. Benchmarks without BENCH lines are reported as such.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = (
    "bench_imports",
    "bench_kernels",
    "bench_conv_ntk",
    "bench_attacks",
    "bench_features",
    "bench_jacobians",
    "bench_twolayer",
    "bench_entk",
    "bench_dynamics_epoch",
)


def run(name: str, quick: bool) -> tuple[list[list[str]], float, int, str]:
    args = [sys.executable, str(HERE / f"{name}.py")] + (["--quick"] if quick else [])
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, cwd=HERE.parent)
    rows = [
        line.split("\t")[1:]
        for line in proc.stdout.splitlines()
        if line.startswith("BENCH\t")
    ]
    return rows, time.perf_counter() - start, proc.returncode, proc.stderr[-800:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="laptop shapes, few repeats"
    )
    parser.add_argument("--only", nargs="*", default=None, help="benchmark names")
    args = parser.parse_args()
    names = [n for n in ORDER if args.only is None or n in args.only]
    table = []
    for name in names:
        rows, took, code, err = run(name, args.quick)
        print(
            f"{name}: {len(rows)} measurement(s), {took:.0f} s, exit {code}", flush=True
        )
        if code:
            print(err, file=sys.stderr)
        table += rows or [["-", f"{name}: no BENCH line", "nan", "nan", ""]]
    head = "| stage | measurement | time s | bound s | ratio | bound |"
    print("\n" + head + "\n|---|---|---|---|---|---|")
    for stage, what, t, b, kind in table:
        t, b = float(t), float(b)
        ratio = t / b if b > 0 else float("nan")
        print(f"| {stage} | {what} | {t:.4g} | {b:.4g} | {ratio:.2f} | {kind} |")


if __name__ == "__main__":
    main()
