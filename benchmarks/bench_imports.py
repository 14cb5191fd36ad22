"""Start-up cost of a job: the imports and first kernel call it pays once.

Each measurement is a fresh interpreter (wall time, median of repeats). The compute
job: ``import _common``; pin threads; ``import ntkadv.kernels.analytic`` (jax and
neural-tangents without its TensorFlow interop, ntkadv.compat) and build one kernel
function; its bound is a bare ``import jax`` (what any jax job pays). Before the
TensorFlow interop was skipped, this job took 20.6 s (TensorFlow alone ~19 s). A
figure / table job (`FIGURE_JOB`); its bound is a bare ``import matplotlib.pyplot``.

Run: ``./uvw run python benchmarks/bench_imports.py [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _bench import emit

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
JOB = (
    "import _common; _common.pin_threads(1)\n"
    "from ntkadv.kernels.analytic import kernel_fn_from_spec\n"
    "kernel_fn_from_spec({'family': 'fc'})\n"
)
BOUND = "import jax"
#: A figure / table job (44 of the laptop run's 165 jobs, 1-5 s each): the script
#: entry helper, a plotting module and the stage's summary readers (pandas, h5py).
FIGURE_JOB = (
    "import _common\n"
    "from ntkadv.plotting import features, dynamics\n"
    "import ntkadv.features.summary, ntkadv.dynamics.summary\n"
)
FIGURE_BOUND = "import matplotlib.pyplot"


def wall(code: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=SCRIPTS, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeats = 2 if args.quick else 5
    emit(
        "startup",
        "compute job imports",
        wall(JOB, repeats),
        wall(BOUND, repeats),
        "bare import jax",
    )
    emit(
        "startup",
        "figure job imports",
        wall(FIGURE_JOB, repeats),
        wall(FIGURE_BOUND, repeats),
        "bare import matplotlib.pyplot",
    )


if __name__ == "__main__":
    main()
