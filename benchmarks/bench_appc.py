"""Benchmark: the matrix-free NTK reference of supp. App. C on the first n MNIST images.

Rule `compute_transfer_reference` with ``transfer.solver: iterative`` (what
config/paper.yaml runs on all 60,000 MNIST training images, ``datasets.mnistall``)
never forms the n x n Gram: the block Lanczos basis of c_t (supp. Eq. 3) is grown
with kernel matvecs that recompute every (b, b) block from the inputs
(`ntkadv.spectra.iterative.KernelMatvec`, b = 1000), Θ(X_test, X) is (m, n), and the
attacked points' f_t(x_adv) = Θ(x_adv, X) c_t is accumulated block by block
(`iterative.kernel_matmul`); the loss gradients contract the factored
input-Jacobian once with ∂L/∂f (`InputJacobian.contract_weighted`).

Mode ``run --n N`` (one process, one core, float64): config/paper.yaml's transfer
settings (lr, epochs, n_eval, alignment and image epochs, ε, solver_tol) on the first
N images of results/data/mnistall.h5 (rule prepare_dataset of config/paper.yaml) and
its 1000 test points. Phases, each in CPU seconds: the factored input-Jacobian of
the test points (the work of rule compute_ntk_input_jacobian, in memory here), the
predictor (Θ(X_test, X) and the block Lanczos: `transfer.task._matrix_free_reference`)
and the attacks (`reference.ntk_transfer_reference` at every evaluation epoch:
f_t, ∇ₓL, own-FGSM and random-sign accuracies, the alignment curve). Printed: one
JSON line (n, phases, kernel matvecs, the last relative change of c_t against the
tolerance, λ_max, peak RSS = VmHWM of the process) and ``BENCH`` lines
(benchmarks/_bench.py): the predictor against matvecs · n²/2 + m·n kernel entries
times d multiply-adds (the x·x' products alone) at the float64 matmul rate measured
in the same run, and the whole reference against that plus the attacks' 2·m·n
entries and one m·n·d contraction per epoch.

Mode ``fit FILE...``: the JSON lines of several runs; fits CPU-s = a·n^b per phase
and the peak RSS as r0 + r1·n, and extrapolates both to n = 60,000.

Run: ``./uvw run python benchmarks/bench_appc.py run --n 10000 > appc_10k.json``
(after ``snakemake --configfile config/paper.yaml --cores 1 results/data/mnistall.h5``),
then ``./uvw run python benchmarks/bench_appc.py fit appc_*.json``. Measured numbers:
docs/paper_scale.md, "App. C at 60k".
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from _bench import emit, matmul_rate, pin_one_core

pin_one_core()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from ntkadv.claims.nulls import random_signs  # noqa: E402
from ntkadv.data import load_prepared  # noqa: E402
from ntkadv.kernels import jacobians  # noqa: E402
from ntkadv.kernels.analytic import twolayer_ntk  # noqa: E402
from ntkadv.spectra import iterative  # noqa: E402
from ntkadv.timing import proc_status_kb  # noqa: E402
from ntkadv.transfer import reference, task  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATASET = "mnistall"


def paper_settings(n: int) -> task.ReferenceSettings:
    """ReferenceSettings of config/paper.yaml's App. C MNIST job on n images."""
    config = yaml.safe_load((REPO / "config/paper.yaml").read_text())
    tr = config["transfer"]
    return task.ReferenceSettings(
        arch=config["architectures"][tr["arch"]],
        n_train=n,
        lr=tr["lr_overrides"].get(DATASET, tr["lr"]),
        eps=config["datasets"][DATASET]["eps"],
        seed=config["seed"],
        epochs=tr["epochs"],
        n_eval=tr["n_eval"],
        align_epoch=tr["align_epoch"],
        image_index=None,
        image_epochs=tuple(tr["image_epochs"]),
        x64=True,
        solver=tr["solver"],
        solver_tol=tr["solver_tol"],
    )


def run(n: int, data_path: Path) -> dict:
    """One reference on the first n images; phases in CPU seconds."""
    rate = matmul_rate(1000, k=784)
    data = load_prepared(data_path)
    s = paper_settings(n)
    epochs = s.eval_epochs()
    log = logging.getLogger("bench_appc")
    x_train = data["x_train"][:n].reshape(n, -1)
    x_test = data["x_test"].reshape(data["x_test"].shape[0], -1)
    m, d = x_test.shape
    cpu = {}
    start = time.process_time()
    jac = jacobians.input_jacobian_fn(twolayer_ntk, "factored")(
        x_test.astype(np.float64), x_train.astype(np.float64), block_size=500
    )
    cpu["jacobian"] = time.process_time() - start
    start = time.process_time()
    ref = task._matrix_free_reference(data, s, epochs, log)
    cpu["predictor"] = time.process_time() - start
    start = time.process_time()
    out = reference.ntk_transfer_reference(
        ref,
        jac,
        twolayer_ntk,
        x_train,
        x_test,
        data["y_test"],
        data["attrs"]["task"],
        epochs,
        s.eps,
        align_epoch=s.align_epoch,
        random_signs=random_signs(x_test.shape, s.seed),
        block_size=iterative.BLOCK_SIZE,
    )
    cpu["attacks"] = time.process_time() - start
    info = ref.solver.krylov.info
    matvecs = info.iterations
    bound_predictor = (matvecs * n * n / 2 + m * n) * d * 2 / rate
    bound_attacks = len(epochs) * (2 * m * n * d + m * n * d) * 2 / rate
    emit("appc", f"predictor n={n}", cpu["predictor"], bound_predictor, "x.x' GEMM")
    total = cpu["predictor"] + cpu["attacks"]
    emit("appc", f"reference n={n}", total, bound_predictor + bound_attacks, "GEMMs")
    return {
        "n": n,
        "m": m,
        "d": d,
        "epochs": len(epochs),
        "cpu_s": cpu,
        "matvecs": matvecs,
        "basis": int(ref.solver.krylov.basis.shape[1]),
        "last_change": float(np.max(info.residuals)),
        "tol": s.solver_tol,
        "lambda_max": ref.eigval_max,
        "stability": s.lr * ref.eigval_max / n,
        "acc_clean_last": float(out["acc_clean"][-1]),
        "acc_own_last": float(out["acc_own"][-1]),
        "peak_rss_mb": (proc_status_kb("VmHWM") or 0) / 1024,
        "matmul_gflops": rate / 1e9,
    }


def one_matvec(n: int, data_path: Path) -> dict:
    """CPU seconds of one Krylov step's kernel matvec Θ V (V (n, 10)) over the first
    n images, compilation included; the solver's cost is the run's matvec count
    times this."""
    rate = matmul_rate(1000, k=784)
    data = load_prepared(data_path)
    x = data["x_train"][:n].reshape(n, -1).astype(np.float64)
    v = np.asarray(data["y_train"][:n], dtype=np.float64)
    start = time.process_time()
    op = iterative.KernelMatvec(twolayer_ntk, x)
    op(v)
    seconds = time.process_time() - start
    bound = n * n / 2 * x.shape[1] * 2 / rate
    emit("appc", f"kernel matvec n={n}", seconds, bound, "x.x' GEMM of n²/2 entries")
    return {
        "n": n,
        "matvec_cpu_s": seconds,
        "bound_s": bound,
        "peak_rss_mb": (proc_status_kb("VmHWM") or 0) / 1024,
        "matmul_gflops": rate / 1e9,
    }


def _power_fit(n: np.ndarray, t: np.ndarray, n_target: int) -> tuple[float, float]:
    """(exponent b of t = a·n^b, a·n_target^b)."""
    b, log_a = np.polyfit(np.log(n), np.log(t), 1)
    return float(b), float(np.exp(log_a) * n_target**b)


def fit(paths: list[str], n_target: int = 60000) -> None:
    """Extrapolate to n_target: the solver as (mean matvecs of the whole runs) x
    (one matvec, fitted a·n^b over the matvec runs and the runs' per-matvec time),
    the attacks and the Jacobian as a·n^b over the whole runs, the peak RSS of the
    whole runs as r0 + r1·n."""
    rows = [
        json.loads(line)
        for p in paths
        for line in Path(p).read_text().splitlines()
        if line.startswith("{")
    ]
    runs = sorted((r for r in rows if "cpu_s" in r), key=lambda r: r["n"])
    mvs = sorted((r for r in rows if "matvec_cpu_s" in r), key=lambda r: r["n"])
    n = np.array([r["n"] for r in runs], dtype=float)
    for r in runs:
        print(
            f"n={r['n']}: " + ", ".join(f"{k} {v:.1f}" for k, v in r["cpu_s"].items())
            + f" CPU-s; {r['matvecs']} matvecs, last change {r['last_change']:.2g}"
            f" (tol {r['tol']:g}); peak RSS {r['peak_rss_mb']:.0f} MB"
        )  # fmt: skip
    for r in mvs:
        print(
            f"n={r['n']}: one matvec {r['matvec_cpu_s']:.1f} CPU-s (bound "
            f"{r['bound_s']:.1f} s, {r['matvec_cpu_s'] / r['bound_s']:.2f}x); "
            f"peak RSS {r['peak_rss_mb']:.0f} MB"
        )
    matvecs = float(np.mean([r["matvecs"] for r in runs]))
    mv_n = np.array([r["n"] for r in mvs], dtype=float)
    mv_t = np.array([r["matvec_cpu_s"] for r in mvs])
    b_mv, one = _power_fit(mv_n, mv_t, n_target)
    total = matvecs * one
    print(f"matvec: exponent {b_mv:.2f}; at {n_target}: {one:.0f} s x {matvecs:.1f}"
          f" matvecs = {total:.0f} s")  # fmt: skip
    for phase in ("jacobian", "attacks"):
        b, at = _power_fit(n, np.array([r["cpu_s"][phase] for r in runs]), n_target)
        total += at
        print(f"{phase}: exponent {b:.2f}; at {n_target}: {at:.0f} s")
    rss = np.array([r["peak_rss_mb"] for r in runs])
    r1, r0 = np.polyfit(n, rss, 1)
    print(f"peak RSS at {n_target}: {r0 + r1 * n_target:.0f} MB")
    print(f"whole reference at {n_target}: {total:.0f} CPU-s = {total / 60:.1f} min")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    one = sub.add_parser("run")
    one.add_argument("--n", type=int, required=True)
    one.add_argument("--data", default=str(REPO / f"results/data/{DATASET}.h5"))
    mv = sub.add_parser("matvec")
    mv.add_argument("--n", type=int, required=True)
    mv.add_argument("--data", default=str(REPO / f"results/data/{DATASET}.h5"))
    many = sub.add_parser("fit")
    many.add_argument("files", nargs="+")
    args = parser.parse_args()
    if args.mode == "run":
        print(json.dumps(run(args.n, Path(args.data))), flush=True)
    elif args.mode == "matvec":
        print(json.dumps(one_matvec(args.n, Path(args.data))), flush=True)
    else:
        fit(args.files)


if __name__ == "__main__":
    main()
