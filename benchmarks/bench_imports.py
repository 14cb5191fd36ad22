"""Start-up cost of a rule script: `import neural_tangents` with and without TensorFlow.

Run: uv run python benchmarks/bench_imports.py [repeats]
Each measurement is a fresh interpreter that imports ntkadv.kernels (which imports
neural_tangents.stax). Baseline: NTKADV_LOAD_TENSORFLOW=1, i.e. neural-tangents'
eager import of its TensorFlow interop; ntkadv's default skips it (ntkadv/__init__).
Every kernel, attack, feature and dynamics job pays this once. Prints the median
wall time of each and the ratio baseline / ntkadv.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
PROBE = "import ntkadv.kernels.analytic as a; a.kernel_fn_from_spec({'family': 'fc'})"


def wall(repeats: int, **env: str) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", PROBE],
            cwd=SCRIPTS,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env},
            check=True,
            capture_output=True,
        )
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(repeats: int = 3) -> None:
    fast = wall(repeats)
    slow = wall(repeats, NTKADV_LOAD_TENSORFLOW="1")
    print(f"import with TensorFlow interop (baseline): {slow:6.2f} s")
    print(f"import via ntkadv (interop skipped):       {fast:6.2f} s")
    print(f"ratio baseline / ntkadv: {slow / fast:.1f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
