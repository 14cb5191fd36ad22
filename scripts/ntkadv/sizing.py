"""Memory and wall-time estimates of the workflow's jobs (pure; no jax import).

The workflow's resource functions (workflow/rules/helpers/resources.smk) are thin
wrappers that pass sizes from the config to these functions; the constants they use
are the library's own (image shapes of the data-source registry
`ntkadv.data.sources`, the Jacobian form and dense tiling
of the kernel-family registry `ntkadv.kernels.families`, the CNN layer widths of
`ntkadv.dynamics.architectures`). The kernel half's requests (Gram, eigh, feature
scores, top-r, attacks) come from CPU time and peak RSS measured at three sizes
(`measured_request`, `RATES_FILE`, benchmarks/bench_scaling.py).
Every estimate is in MB (``mem_mb``) or minutes (``runtime``) for the first attempt;
`on_attempt` scales it for retries (each retry doubles).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from pathlib import Path

from ntkadv.data.sources import public_source
from ntkadv.dynamics.architectures import parameter_count
from ntkadv.features import topr
from ntkadv.kernels.families import (  # noqa: F401 (re-exported: resources.smk)
    DENSE_ROW_BLOCK_BYTES,
    dense_tile_rows,
    jacobian_form,
)

MB = 2**20
#: Fixed per-job overhead (interpreter, jax, XLA buffers), MB.
BASE_MB = 2000
#: Bytes of one float64 / float32.
F64, F32 = 8, 4


def input_dim(source: str) -> int:
    """Flattened input dimension d of a public source ('mnist' 784, 'cifar10' 3072)."""
    return math.prod(public_source(source).input_shape)


def on_attempt(value: float, attempt: int, floor: float = 0.0) -> int:
    """An estimate for the given attempt (1, 2, ...): doubled on every retry."""
    return int(max(value, floor) * 2 ** (attempt - 1))


# ---------------------------------------------------------------- job length limit
# A cluster rejects or never schedules a job above its partition's time limit, and a
# job of D days is D days of wall whatever the number of free nodes. Jobs whose work
# is a sum over independent evaluation points (attack_ntk, score_features) are split
# into shards of contiguous point ranges plus a merge (`shard_count`); sequential
# training rules resume from their per-epoch checkpoint on the next attempt
# (`resumable_attempts`).

#: Default longest first-attempt request, minutes (config resources.max_job_min).
MAX_JOB_MIN = 1440


def shard_count(request: Callable[[int], float], m: int, limit: float) -> int:
    """Shards k of a job over m independent evaluation points: the smallest k whose
    largest shard (ceil(m / k) points) requests at most `limit` minutes.

    Args:
        request: points -> first-attempt runtime request (minutes) of a job that
            evaluates that many points (the rule's measured request).
        m: evaluation points of the unsharded job.
        limit: longest request allowed (config resources.max_job_min).

    Returns:
        k in [1, m]; 1 when the whole job fits (no shards), m when not even one
        point fits (one point per shard: the finest split there is).
    """
    if m <= 1 or request(m) <= limit:
        return 1
    lo, hi = 1, m  # request(ceil(m / hi)) is the smallest there is
    while hi - lo > 1:  # requests grow with the points: bisect on k
        mid = (lo + hi) // 2
        if request(-(-m // mid)) <= limit:
            hi = mid
        else:
            lo = mid
    return hi


def shard_ranges(m: int, k: int) -> list[tuple[int, int]]:
    """k contiguous ranges [i0, i1) covering range(m), sizes differing by <= 1 (the
    first m mod k ranges one longer), in order."""
    if not 1 <= k <= max(m, 1):
        raise ValueError(f"{k} shards of {m} points")
    bounds = [i * m // k for i in range(k + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def features_merge_mem_mb(n: int, m: int, k: int, d: int, n_eps: int) -> float:
    """Memory of merge_feature_shards: the K features' projections at m points
    (clean + 2 sides per ε, float64, twice: read and joined) and scores, their
    eigenvectors (n, K), the prepared data ((n + m) x d), + overhead."""
    floats = 2 * k * m * (1 + 2 * n_eps) + 4 * k * m + n * k + (n + m) * d
    return BASE_MB + 2 * floats * F64 / MB


def resumable_runtime_min(minutes: float, attempt: int, limit: float) -> int:
    """Runtime request of a checkpointed training job on `attempt`: the estimate
    doubled per retry (`on_attempt`) but never above `limit`, so a job longer than
    the limit runs as `resumable_attempts` jobs of `limit` minutes, each resuming
    from the last completed epoch (ntkadv.dynamics.checkpoint)."""
    return int(min(on_attempt(minutes, attempt), limit))


def resumable_retries(minutes: list[float], limit: float, spare: int = 1) -> int | None:
    """The `retries:` of a checkpointed training rule whose jobs estimate `minutes`:
    None (the profile's own `retries`) when every job fits in one attempt of
    `limit`; else the attempts the longest needs (`resumable_attempts`) - 1, plus
    `spare` retries for a failure that is not the time limit (the SLURM profile's
    `retries: 1`, which a rule's own `retries:` replaces)."""
    need = max((resumable_attempts(m, limit) for m in minutes), default=1)
    return None if need <= 1 else need - 1 + spare


def attack_merge_mem_mb(m: int, d: int, closed: int, pgd_rows: int) -> float:
    """Memory of merge_attack_shards: every attacked input of the m points (at most
    closed + pgd_rows rows per point, d float32 each: the true-label x_adv are a
    subset), held three times (the shards read, joined, written), + overhead."""
    return BASE_MB + 3 * m * d * (closed + pgd_rows) * F32 / MB


def resumable_attempts(request: float, limit: float) -> int:
    """Attempts of at most `limit` minutes a checkpointed job of `request` minutes
    needs (ceil(request / limit), at least 1): each attempt resumes from the last
    completed epoch, so a job of D days runs as ceil(D) jobs of <= 1 day."""
    return max(1, math.ceil(request / limit))


# ---------------------------------------------------------------- kernels, spectra


#: Measured cost of one dense-family per-pair input gradient per input dimension,
#: seconds: 47-79 µs per CONV1 pair at d = 3072, one core (issue 24, measured at
#: 70d8ad8); the upper end, 79 µs / 3072. Consumers pay it once per contraction
#: pass (`ntkadv.kernels.jacobians.ImplicitJacobian`).
DENSE_JACOBIAN_S_PER_PAIR_DIM = 79e-6 / 3072


def jacobian_mem_mb(n: int, d: int, block_size: int) -> float:
    """Peak of a Jacobian job, + overhead: the factored form's (block, n) float64
    `a`, `b` row blocks (thrice buffered), or for dense families one gradient tile
    (rows x block x d float64, ~4 copies with the XLA temporaries) and the checked
    first row (n x d); nothing scales with m·n·d (the dense D is not stored)."""
    rows = dense_tile_rows(block_size, n, d)
    floats = 6 * block_size * n + 4 * rows * block_size * d + 2 * n * d
    return BASE_MB + floats * F64 / MB


def jacobian_disk_mb(n: int, m: int, d: int, family: str) -> float:
    """Disk of an input-Jacobian file: the inputs ((n + m) x d float64) and the
    factored form's two (m, n) float64 matrices; dense families store no Jacobian
    (0.26 GB for a 1000 x 10,000 CIFAR CONV kernel, was 123 GB as (m, n, d) float32)."""
    size = (n + m) * d * F64
    if jacobian_form(family) == "factored":
        size += 2 * m * n * F64
    return size / MB


def jacobian_tile_mb(n: int, d: int, block_size: int, family: str) -> float:
    """Extra memory of a consumer's contraction with a dense-family cache (one
    gradient tile, rows x block x d float64, ~4 copies); 0 for the factored form."""
    if jacobian_form(family) == "factored":
        return 0.0
    rows = dense_tile_rows(block_size, n, d)
    return 4 * rows * block_size * d * F64 / MB


def jacobian_recompute_min(n: int, m: int, d: int, family: str) -> float:
    """Minutes a consumer spends recomputing a dense-family D at m points (one
    contraction pass, `DENSE_JACOBIAN_S_PER_PAIR_DIM`); 0 for the factored form."""
    if jacobian_form(family) == "factored":
        return 0.0
    return m * n * d * DENSE_JACOBIAN_S_PER_PAIR_DIM / SECONDS_PER_MIN


def dynamics_disk_mb(epochs: int, kernel_batch: int, num_classes: int = 10) -> float:
    """Disk of a training run: (E+1) eNTKs of (k B)^2 float32, twice (the
    checkpoint's per-epoch files and run.h5 exist together at the end)."""
    return 2 * (epochs + 1) * (num_classes * kernel_batch) ** 2 * F32 / MB + 50


#: Sustained rate (flop/s) behind the input-Jacobian's runtime request (the other
#: kernel-half rules use measured rates: `measured_request`).
KERNEL_FLOPS = 2e9
#: Seconds per minute: the requests are minutes, flops / rate is seconds.
SECONDS_PER_MIN = 60.0


def kernel_runtime_min(n: int, m: int, d: int) -> float:
    """Generous wall time of an input-Jacobian job, minutes: (n + m) n d flops at
    `KERNEL_FLOPS` (2 GFLOP/s), at least 30 minutes."""
    return max(30.0, (n + m) * n * d / KERNEL_FLOPS / SECONDS_PER_MIN)


# ---------------------------------------------------------------- transfer


def transfer_reference_mem_mb(n_all: int, m: int, d: int, n_eval: int) -> float:
    """Gram / eigenvectors, factored Jacobian, per-epoch loss gradients (float32)."""
    return (
        2000
        + (3 * n_all * n_all * F64 + 2 * m * n_all * F64) / MB
        + (2 * n_eval * m * d * F32 / MB)
    )


def transfer_reference_runtime_min(n: int, m: int, d: int, n_eval: int) -> float:
    """Eigendecomposition plus one Jacobian contraction per evaluation epoch."""
    flops = n**3 * 10 + n_eval * m * n * d * 20
    return max(30.0, flops / 1e10 / 60)


#: Kernel matvecs of the matrix-free reference's block Lanczos at the paper's
#: App. C times (measured 35 / 30 / 30 on MNIST at n = 2k / 5k / 10k, tol 1e-6;
#: docs/paper_scale.md), with margin.
KRYLOV_MATVECS = 60
#: CPU seconds per twolayer-NTK entry and input dimension (one core, float64; the
#: x·x' product plus the arc-cosine: 76 ns per entry at d = 784 on MNIST, n = 40k,
#: benchmarks/bench_appc.py).
SECONDS_PER_ENTRY_DIM = 1e-10
#: Sustained multiply-adds per second of one core's float64 GEMM (~50 GFLOP/s).
GEMM_MADDS = 2.5e10


def matrix_free_reference_mem_mb(n: int, m: int, d: int, n_eval: int, k: int) -> float:
    """transfer.solver iterative: the inputs (float32 data, float64 copies, the
    Jacobian cache's), Θ(X_test, X) and the factored Jacobian (m, n) x 3, the Krylov
    basis, one (m, n) weight block, per-epoch loss gradients (float32); nothing
    n x n."""
    floats = 4 * n * d + 4 * m * n + KRYLOV_MATVECS * k * n
    return BASE_MB + floats * F64 / MB + 2 * n_eval * m * d * F32 / MB


def matrix_free_reference_runtime_min(n: int, m: int, d: int, n_eval: int) -> float:
    """transfer.solver iterative: the Krylov matvecs (n²/2 kernel entries each),
    Θ(X_test, X), the attacked points' Θ(x_adv, X) c per epoch (2 m n entries) and
    one m x n x d loss-gradient contraction per epoch; at least 30 minutes."""
    entries = KRYLOV_MATVECS * n * n / 2 + (2 * n_eval + 1) * m * n
    seconds = entries * d * SECONDS_PER_ENTRY_DIM + n_eval * m * n * d / GEMM_MADDS
    return max(30.0, seconds / 60)


def twolayer_mem_mb(n: int, m: int, d: int, r: int, n_eval: int, width: int) -> float:
    """Pre-activations and masks (n x width), first layer, reference gradients."""
    floats = 6 * n * width + 4 * width * d + 3 * width * r + n_eval * m * d + 2 * n * d
    return 2000 + 1.5 * floats * F32 / MB


def twolayer_runtime_min(n: int, r: int, width: int, epochs: int) -> float:
    """4 n r width flops per epoch at a sustained 2 TFLOP/s, at least 30 minutes."""
    return max(30.0, 4 * n * r * width * epochs / 2e12 / 60)


# ---------------------------------------------------------------- dynamics


#: Peak XLA temporaries of the layerwise / structured-derivatives eNTK per kernel-batch
#: example, MB (benchmarks/bench_entk.py: MNIST CNN B=100 225 MB, CNN_mega B=50
#: 759 MB); they never form the (10 B, P) Jacobian.
LAYERWISE_MB_PER_EXAMPLE = {"cnn": 2.25, "cnn_mega": 15.2}
#: eNTK implementations that materialise the whole (10 B, P) Jacobian.
JACOBIAN_IMPLEMENTATIONS = (
    "jacobian_contraction",
    "ntk_vector_products",
    "jacobian_gemm",
)


def dynamics_mem_mb(
    model: str,
    source: str,
    n: int,
    n_eval: int,
    kernel_batch: int,
    ntk_block: int,
    implementation: str = "auto",
) -> float:
    """Data, the eNTK's temporaries and a few (10 B)² kernel matrices, + 3000 MB.

    The Jacobian implementations hold two tiles of tile x 10 x P float32 (x3 for
    intermediates); the layerwise one (what 'auto' picks on the two CNNs) and
    structured derivatives hold one layer's per-example gradient
    (`LAYERWISE_MB_PER_EXAMPLE`, x3 margin).
    """
    shape = public_source(source).input_shape
    tile = ntk_block or kernel_batch
    if implementation in JACOBIAN_IMPLEMENTATIONS:
        p = parameter_count(model, shape, 10)
        ntk_mb = 3 * 2 * tile * 10 * p * F32 / MB
    else:
        ntk_mb = 3 * LAYERWISE_MB_PER_EXAMPLE[model] * tile
    kernels_mb = 4 * (10 * kernel_batch) ** 2 * F32 / MB
    return 3000 + ntk_mb + kernels_mb + (n + n_eval) * math.prod(shape) * F32 / MB


def dynamics_runtime_min(
    model: str, epochs: int, passes: int, kernel_batch: int, linear: bool = False
) -> float:
    """Wall time at ~2000 (cnn_mega) / 20000 (cnn) example-gradients per second on
    one GPU, plus the eNTK, x2 margin; a linearised step costs ~3 passes (for a
    linearised run `epochs` counts only the epochs after its branch point)."""
    rate = 2000 if model == "cnn_mega" else 20000
    minutes = epochs * (passes / rate + 10 * kernel_batch / 50) / 60
    return max(60.0, 2 * minutes) * (3 if linear else 1)


def measures_mem_mb(kernel_batch: int) -> float:
    """Two 16-epoch blocks of flattened (10 B)² kernels (float64) plus one eigh."""
    side = 10 * kernel_batch
    return 1500 + 40 * side * side * F64 / MB


# ---------------------------------------------------------------- measured rates
# The kernel half's runtime and memory requests rest on CPU seconds and peak RSS
# measured at three training-set sizes by benchmarks/bench_scaling.py (issue 24),
# stored with their commit, machine and date in `RATES_FILE`. Each rule's cost is
# modelled as a · U^b in its work count U (`work_units`), its RSS as r0 + r1 · V in
# its dominant float count V (`memory_floats`).

#: The measured rates (JSON, written by benchmarks/bench_scaling.py fit).
RATES_FILE = Path(__file__).with_name("measured_rates.json")
#: Reverse-mode cost of a kernel row relative to the forward row (measured on CONV1
#: at 70d8ad8, issue 24): a PGD row-step counts as this many forward rows.
PGD_ROW_STEP = 2.65
#: Requests are this many times the measured extrapolation (CPU time of one process
#: on a shared 2-core machine; the retry doubles it again).
SAFETY = 1.5
#: Rules whose requests come from `RATES_FILE`.
MEASURED_RULES = (
    "compute_ntk_gram",
    "compute_ntk_input_jacobian",
    "eigendecompose_gram",
    "score_features",
    "attack_ntk",
    "evaluate_topr_kernels",
)


#: At most this many times per attack at which a permuted-label machine is
#: attacked: the two folds' τ_early of finding 4 and t = ∞.
NULL_TIMES = 3


def attack_rows(config: dict, family: str, dataset: str) -> dict[str, int]:
    """Rows per evaluation point of `ntkadv.attacks.suite.attack_suite` under the
    config's attack plan (`make_plan`; supp. App. B): closed-form perturbed points
    (FGSM at every attacked time and label set, the first-order attacks and the
    ε-curve on the true labels, the random-sign control) and PGD row-steps (rows x
    steps). The permuted-label machines are attacked (FGSM, PGD) only at finding
    4's cross-fitted τ_early and t = ∞ (`ntkadv.attacks.suite.with_null_times`,
    chosen from clean accuracy): at most `NULL_TIMES` times each, the bound
    counted here; they skip PGD when it runs at t = ∞ only.

    Returns:
        {"closed": forward rows, "pgd_row_steps": reverse rows, "pgd_rows": PGD
        rows (before steps), "m": points attacked}.
    """
    att, ds = config["attacks"], config["datasets"][dataset]
    budget = att["budget"][family]
    t = config["predictor"]["tau_num"] + 1
    ti = min(budget.get("max_times") or t, t)
    tp = min(t, t if budget.get("pgd_times") is None else budget["pgd_times"])
    steps = budget.get("pgd_steps") or att["pgd_steps"]
    e = len({float(v) for v in att["eps_multipliers"]} | {1.0})
    sets = 1 + att.get("null_permutations", 0)
    fo = 1 if len(ds["classes"]) == 2 else 2
    curve = bool(budget.get("eps_curve", True))
    curve_pgd = curve and bool(budget.get("eps_curve_pgd", True))
    tn, tpn = min(ti, NULL_TIMES), min(tp, NULL_TIMES)
    rs = e if curve else 1  # random-sign points (one per ε)
    closed = ti + (sets - 1) * tn + fo * ti + (e - 1) * (1 + fo) * curve + rs
    pgd_rows = (tp + (e - 1) * curve_pgd if tp else 0) + (sets - 1) * tpn * (tp >= 2)
    m = min(ds["n_test"], budget.get("n_eval") or ds["n_test"])
    return {
        "closed": closed,
        "pgd_row_steps": pgd_rows * steps,
        "pgd_rows": pgd_rows,
        "m": m,
    }


def work_sizes(
    rule: str,
    family: str,
    config: dict,
    dataset: str,
    d: int | None = None,
    points: int | None = None,
) -> dict[str, int]:
    """The size variables of one kernel-half job (`work_units`, `memory_floats`):
    n (training points), m (points the job evaluates; `points` if given, e.g. one
    shard's range), d (the flattened input dimension; None = that of the dataset's
    public source, which a dataset from a file of one's own has not: the workflow
    passes its own), and per rule K (scored eigenfeatures), the attack rows
    (`attack_rows`) or, for top-r, n_val (ranking points), sets (label sets:
    the true labels and the permutations), k (outputs: 1 binary, else the
    classes) and r (top-r machines, `topr.topr_grid`)."""
    ds = config["datasets"][dataset]
    n, m = ds["n_train"], ds["n_test"]
    d = input_dim(ds["source"]) if d is None else int(d)
    sizes = {"n": n, "m": m, "d": d}
    ft = config["features"]
    if rule == "score_features":
        spread = ft.get("spread", {}).get(family, 0)
        k = ft["top_k"] + (n if spread is None else spread)
        sizes.update(k=min(k, n), m=min(m, ft["n_eval"].get(family) or m))
    elif rule == "attack_ntk":
        sizes.update(attack_rows(config, family, dataset))
    elif rule == "evaluate_topr_kernels":
        tp = ft["topr"]
        sizes.update(
            n_val=tp["n_val"],
            sets=1 + tp["null_permutations"],
            k=1 if len(ds["classes"]) == 2 else len(ds["classes"]),
            r=len(topr.topr_grid(n, tp["grid"])),
        )
    if points is not None:
        sizes["m"] = int(points)
    return sizes


def work_units(rule: str, s: dict[str, int]) -> float:
    """Work count U of a rule (its CPU time ∝ U^b, b fitted; b ≈ 1 expected):

    - compute_ntk_gram: (n + m)·n kernel entries (Θ(X, X) and Θ(X_test, X)).
    - compute_ntk_input_jacobian: m·n pairs (x, x_i) of D(x) (supp. Eq. 9).
    - eigendecompose_gram: n³ (dense symmetric eigh).
    - score_features: K·m·n kernel-row entries (one FGSM row per feature and point,
      ntkadv.features.rescore); the permuted-label rescorings reuse those rows.
    - attack_ntk: m·n·(closed + 2.65·pgd_row_steps) kernel-row entries
      (`attack_rows`; a reverse row costs `PGD_ROW_STEP` forward rows).
    - evaluate_topr_kernels: n²·n_val (projections of all n eigenfeatures on the
      ranking split; supp. D.3).
    """
    n, m = s["n"], s["m"]
    if rule == "compute_ntk_gram":
        return (n + m) * n
    if rule == "compute_ntk_input_jacobian":
        return m * n
    if rule == "eigendecompose_gram":
        return float(n) ** 3
    if rule == "score_features":
        return s["k"] * m * n
    if rule == "attack_ntk":
        return m * n * (s["closed"] + PGD_ROW_STEP * s["pgd_row_steps"])
    if rule == "evaluate_topr_kernels":
        return n * n * s["n_val"]
    raise ValueError(f"no work model for rule {rule!r}")


def memory_floats(rule: str, s: dict[str, int]) -> float:
    """Size V of a rule's peak RSS whose slope is fitted (RSS ≈ r0 + r1·V +
    `memory_extra_mb`): the Gram's (n + m)·n, eigh's n² (copies of n x n
    matrices); the Jacobian's m·n; for features and attacks n (kernel-row blocks and
    PGD / gradient buffers of a fixed number of rows x n; their n x n arrays are
    counted in `memory_extra_mb`, as the series cannot separate an n² slope from an
    n slope); top-r's n·d (copies of the training inputs: the caches' float64
    inputs, the pair projector's and PGD's; its n x n and per-point arrays are in
    `memory_extra_mb`)."""
    n, m = s["n"], s["m"]
    if rule == "compute_ntk_gram":
        return (n + m) * n
    if rule == "compute_ntk_input_jacobian":
        return m * n
    if rule == "eigendecompose_gram":
        return n * n
    if rule in ("score_features", "attack_ntk"):
        return n
    if rule == "evaluate_topr_kernels":
        return n * s["d"]
    raise ValueError(f"no memory model for rule {rule!r}")


def topr_extra_mb(s: dict[str, int]) -> float:
    """Arrays of known size at top-r's peak, MB: three n x n float64 (the spectrum,
    the candidates' eigenvectors, their concatenation or the ranked copy of
    `topr.topr_coefficients`), Θ(X_test, X) (m, n), the own-FGSM kernel rows
    (r·m_eval, n) and gradients (m_eval, d, r·k) with their temporary, the
    ranking's rescoring temporaries (~5 of (sets, `topr.RANK_CHUNK`, n_val, k)),
    one contraction block (~4 of (`topr.POINT_BLOCK`, d, `topr.PROJECTION_CHUNK`))
    and the chunk's int8 signs (n_val, d, PROJECTION_CHUNK). Nothing is
    n_val x n x d (the former peak, issue 24)."""
    n, m, d, v, k, r = s["n"], s["m"], s["d"], s["n_val"], s["k"], s["r"]
    m_eval = m - v
    floats = (
        3 * n * n
        + m * n
        + r * m_eval * n
        + 2 * m_eval * d * r * k
        + 5 * s["sets"] * topr.RANK_CHUNK * v * k
        + 4 * topr.POINT_BLOCK * d * topr.PROJECTION_CHUNK
    )
    return (floats * F64 + v * d * topr.PROJECTION_CHUNK) / MB


def memory_extra_mb(rule: str, s: dict[str, int]) -> float:
    """Arrays of known size held at the peak, MB (float64): features the Gram and
    spectrum (4 n²) and the (m, d, K) gradient array; attacks the spectrum and
    machines (3 n²); top-r `topr_extra_mb`; 0 otherwise."""
    n, m, d = s["n"], s["m"], s["d"]
    if rule == "score_features":
        return (4 * n * n + s["k"] * m * d) * F64 / MB
    if rule == "attack_ntk":
        return 3 * n * n * F64 / MB
    if rule == "evaluate_topr_kernels":
        return topr_extra_mb(s)
    return 0.0


@functools.lru_cache(maxsize=1)
def measured_rates() -> dict:
    """`RATES_FILE`, parsed (JSON: no code runs)."""
    return json.loads(RATES_FILE.read_text())


def measured_cpu_s(rule: str, family: str, sizes: dict[str, int]) -> float:
    """Extrapolated CPU seconds of one job: the larger of the fitted power law
    a·U^b and the per-unit rate at the largest measured size times U (the fixed
    start-up cost makes b < 1 at small U; the linear rate then bounds it)."""
    r = measured_rates()["rates"][rule][family]
    u = work_units(rule, sizes)
    return max(r["a"] * u ** r["b"], r["rate_at_largest"] * u)


def measured_rss_mb(rule: str, family: str, sizes: dict[str, int]) -> float:
    """Extrapolated peak RSS of one job, MB (the fitted r0 + r1·V plus
    `memory_extra_mb`)."""
    r = measured_rates()["rates"][rule][family]
    fitted = r["rss_mb0"] + r["rss_mb_per_float"] * memory_floats(rule, sizes)
    return fitted + memory_extra_mb(rule, sizes)


#: Smallest runtime request of a measured job, minutes.
MIN_RUNTIME_MIN = 10.0


def measured_runtime_min(
    rule: str, family: str, sizes: dict[str, int], floor: bool = True
) -> float:
    """Runtime request, minutes: `SAFETY` x the measured extrapolation, >= 10
    (`MIN_RUNTIME_MIN`; without it if not `floor`)."""
    mins = SAFETY * measured_cpu_s(rule, family, sizes) / SECONDS_PER_MIN
    return max(MIN_RUNTIME_MIN, mins) if floor else mins


def measured_mem_mb(rule: str, family: str, sizes: dict[str, int]) -> float:
    """Memory request, MB: `SAFETY` x the measured extrapolation, >= 1000."""
    return max(1000.0, SAFETY * measured_rss_mb(rule, family, sizes))


#: Architecture family whose measured rates a family's jobs use: the two-layer NTK
#: is an FC-type kernel (one ReLU layer, factored Jacobian), measured as fc2.
RATE_FAMILY = {"fc": "fc", "twolayer": "fc", "conv": "conv"}
#: Cost of a CONV kernel entry per layer beyond the first, relative to CONV1: ~25 µs
#: CONV2 vs ~10 µs CONV1 per kernel-row entry on one core (benchmarks/
#: bench_features.py, the comment of config.yaml features.n_eval). FC entries are a
#: d-dimensional inner product plus an O(depth) recursion: depth-free.
CONV_DEPTH_FACTOR = 2.5
#: Rules whose cost is kernel entries (scaled by `CONV_DEPTH_FACTOR`).
KERNEL_ROW_RULES = ("compute_ntk_gram", "score_features", "attack_ntk")


def depth_factor(rule: str, arch: dict) -> float:
    """Cost of `arch`'s kernel entries relative to the measured kernel of its family
    (fc2, conv1): `CONV_DEPTH_FACTOR` per CONV layer beyond the first, else 1."""
    if rule in KERNEL_ROW_RULES and arch["family"] == "conv":
        return CONV_DEPTH_FACTOR ** max(0, arch.get("depth", 1) - 1)
    return 1.0


#: Requests while `RATES_FILE` does not exist (a checkout before
#: benchmarks/bench_scaling.py has run; the benchmark's own sizes fit them).
UNMEASURED = {"runtime": 60.0, "mem_mb": 4000.0}


def measured_request(
    rule: str,
    what: str,
    config: dict,
    dataset: str,
    arch: dict,
    d: int | None = None,
    points: int | None = None,
    floor: bool = True,
) -> float:
    """First-attempt request of one kernel-half job from the measured rates.

    Args:
        rule: one of `MEASURED_RULES`.
        what: "runtime" (minutes) or "mem_mb".
        config: the validated workflow config (sizes, attack and feature plans).
        dataset: the job's dataset wildcard.
        arch: the job's architecture spec ({family, depth}).
        d: the dataset's flattened input dimension (None: its public source's).
        points: evaluation points of the job (None: the rule's whole set; a
            shard's range size for a sharded job, `shard_count`).
        floor: apply the smallest requests (10 minutes, 1000 MB); without, the
            runtime is the bare extrapolation (what `shard_count` compares).

    Returns:
        `SAFETY` x the measured extrapolation (CPU seconds x the depth factor, or
        the fitted peak RSS), at least 10 minutes / 1000 MB (`UNMEASURED` if
        `RATES_FILE` is missing). MNIST jobs (d = 784)
        use the CIFAR-2 rates (d = 3072): an upper bound, a kernel entry's cost
        grows with d.
    """
    if what not in UNMEASURED:
        raise ValueError(f"unknown request {what!r}")
    if not RATES_FILE.exists():  # the benchmark's own first run writes it
        return UNMEASURED[what]
    family = RATE_FAMILY[arch["family"]]
    sizes = work_sizes(rule, arch["family"], config, dataset, d, points)
    if what == "runtime":
        scale = depth_factor(rule, arch)
        mins = scale * measured_runtime_min(rule, family, sizes, floor)
        return max(MIN_RUNTIME_MIN, mins) if floor else mins
    return measured_mem_mb(rule, family, sizes)


#: Rules whose work is a sum over independent evaluation points (sharded when a
#: job's request exceeds the limit, `shard_count`).
POINT_RULES = ("attack_ntk", "score_features")


def eps_passes(config: dict, dataset: str) -> int:
    """The paper's ε plus datasets.<d>.extra_eps: the feature, attack and top-r jobs
    run their perturbed-point work once per ε (a runtime factor on the rates, which
    were measured with one ε)."""
    return 1 + len(config["datasets"][dataset].get("extra_eps") or [])


def point_job_runtime_min(
    rule: str,
    config: dict,
    dataset: str,
    arch: dict,
    d: int,
    points: int | None = None,
    floor: bool = True,
) -> float:
    """First-attempt runtime request (minutes) of a `POINT_RULES` job at `points`
    evaluation points (None: the rule's whole set): the measured request
    (`measured_request`) once per ε (the dataset's plus datasets.<d>.extra_eps)
    plus a dense-family consumer's recompute of the gradient tiles at those points
    (`jacobian_recompute_min`; every test point when `points` is None)."""
    ds = config["datasets"][dataset]
    mins = measured_request(rule, "runtime", config, dataset, arch, d, points, floor)
    m = ds["n_test"] if points is None else points
    return mins * eps_passes(config, dataset) + jacobian_recompute_min(
        ds["n_train"], m, d, arch["family"]
    )


def point_shards(
    rule: str, config: dict, dataset: str, arch: dict, d: int
) -> list[tuple[int, int]]:
    """Evaluation-point ranges of the shards of one `POINT_RULES` job: [(0, m)]
    when its request fits config resources.max_job_min, else the fewest
    contiguous ranges whose bare requests (no 10-minute floor) each fit
    (`shard_count`, `shard_ranges`)."""
    m = work_sizes(rule, arch["family"], config, dataset, d)["m"]
    limit = config.get("resources", {}).get("max_job_min", MAX_JOB_MIN)

    def request(points: int) -> float:
        return point_job_runtime_min(rule, config, dataset, arch, d, points, False)

    return shard_ranges(m, shard_count(request, m, limit))
