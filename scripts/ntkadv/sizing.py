"""Memory and wall-time estimates of the workflow's jobs (pure; no jax import).

The workflow's resource functions (workflow/rules/helpers/resources.smk) are thin
wrappers that pass sizes from the config to these functions; the constants they use
are the library's own (image shapes of the data-source registry
`ntkadv.data.sources`, the Jacobian form and dense tiling
of the kernel-family registry `ntkadv.kernels.families`, the CNN layer widths of
`ntkadv.dynamics.architectures`).
Every estimate is in MB (``mem_mb``) or minutes (``runtime``) for the first attempt;
`on_attempt` scales it for retries (each retry doubles).
"""

from __future__ import annotations

import math

from ntkadv.data.sources import public_source
from ntkadv.dynamics.architectures import parameter_count
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


# ---------------------------------------------------------------- kernels, spectra


def gram_mem_mb(n: int, m: int) -> float:
    """Gram (n + m) x n float64, twice (HDF5 buffer + finiteness check), + overhead."""
    return BASE_MB + 2 * (n + m) * n * F64 / MB


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


#: Sustained rates (flop/s) behind the kernel, attack and feature runtime requests.
KERNEL_FLOPS, ATTACK_FLOPS, FEATURES_FLOPS = 2e9, 2e9, 1e9
#: Seconds per minute: the requests are minutes, flops / rate is seconds.
SECONDS_PER_MIN = 60.0


def kernel_runtime_min(n: int, m: int, d: int) -> float:
    """Generous wall time of a kernel-cache job, minutes: (n + m) n d flops at
    `KERNEL_FLOPS` (2 GFLOP/s), at least 30 minutes."""
    return max(30.0, (n + m) * n * d / KERNEL_FLOPS / SECONDS_PER_MIN)


def eigh_mem_mb(n: int) -> float:
    """Gram, eigenvectors and LAPACK workspace (~4 n x n float64), + 1000 MB."""
    return 1000 + 4 * n * n * F64 / MB


# ---------------------------------------------------------------- attacks


def attack_mem_mb(n: int, m: int, d: int) -> float:
    """Spectrum (3 n x n), adversarial copies of the test set (40 m x d), + 1200 MB
    (kernel rows are tiled and the CONV kernel's PGD gradients rematerialised:
    measured peak RSS 0.57-0.99 GB CONV, 0.94-1.21 GB FC at laptop scale)."""
    return 1200 + 3 * n * n * F64 / MB + 40 * m * d * F64 / MB


def attack_runtime_min(n: int, m: int, d: int) -> float:
    """Minutes for ~40 kernel passes over m x n x d at `ATTACK_FLOPS` (2 GFLOP/s),
    at least 30 minutes."""
    return max(30.0, 40 * m * n * d / ATTACK_FLOPS / SECONDS_PER_MIN)


# ---------------------------------------------------------------- features


def features_mem_mb(n: int, m: int, d: int, k: int, chunk: int) -> float:
    """Gram + spectrum, the (m, d, K) gradient array, one chunk of perturbed rows."""
    floats = 4 * n * n + 3 * m * d * k + 3 * chunk * m * (n + d)
    return 2500 + floats * F64 / MB


def topr_mem_mb(n: int, m: int, d: int, r_values: int) -> float:
    """As `features_mem_mb` with 200-feature ranking groups and the r-grid gradients."""
    floats = 4 * n * n + 3 * m * d * (200 + 10 * r_values) + 3 * 25 * m * (n + d)
    return 2500 + floats * F64 / MB


def features_runtime_min(n: int, m: int, d: int, k: int) -> float:
    """Minutes for K perturbed kernel-row passes over m x n x d at `FEATURES_FLOPS`
    (1 GFLOP/s), at least 30 minutes."""
    return max(30.0, k * m * n * d / FEATURES_FLOPS / SECONDS_PER_MIN)


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
