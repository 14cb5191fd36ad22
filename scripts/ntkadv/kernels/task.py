"""Rules compute_ntk_gram and compute_ntk_input_jacobian: read, compute, write.

Each task has the entry signature of every rule (scripts/_common.call):
``(inputs, outputs, settings, ids, log)``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import numpy as np

from ntkadv import h5io


@dataclasses.dataclass(frozen=True)
class KernelSettings:
    """Params of the kernel-cache rules.

    Attributes:
        arch: the architecture's config entry (family, depth, W_std, ...).
        block_size: rows / columns per jitted block (also the HDF5 chunk size).
        x64: compute in float64.
    """

    arch: dict[str, Any]
    block_size: int
    x64: bool


def _cache_attrs(
    data_path: str, ids: dict[str, str], spec: dict, s: KernelSettings
) -> dict[str, Any]:
    """Provenance attrs of a kernel cache file."""
    data_attrs = h5io.read_attrs(data_path)
    return h5io.provenance(
        **ids,
        arch_spec=spec,
        kernel="ntk",
        dataset_spec=data_attrs.get("spec", {}),
        dataset_checksums=data_attrs.get("checksums", {}),
        source=str(data_path),
        block_size=s.block_size,
        x64=bool(s.x64),
    )


def _inputs(data_path: str, x64: bool) -> tuple[np.ndarray, np.ndarray]:
    dtype = np.float64 if x64 else np.float32
    data = h5io.read(data_path, ["x_train", "x_test"])
    return data["x_train"].astype(dtype), data["x_test"].astype(dtype)


def _log_device_memory(log: logging.Logger) -> None:
    import jax

    stats = jax.devices()[0].memory_stats() or {}
    log.info("peak device memory: %s", stats.get("peak_bytes_in_use", "n/a (CPU)"))


def compute_ntk_gram(
    inputs: dict[str, str],
    outputs: dict[str, str],
    settings: KernelSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Θ(X_train, X_train) and Θ(X_test, X_train), float64, blocked, to HDF5.

    Datasets ``k_train_train`` (n, n) and ``k_test_train`` (m, n), chunked by blocks.

    Args:
        inputs: ``data`` (the prepared dataset).
        outputs: ``gram`` (the kernel cache).
        settings: the architecture, block size and precision.
        ids: {dataset, arch}; log: the job's logger.

    Raises:
        FloatingPointError: a kernel entry is not finite (nothing is written).
    """
    from ntkadv.kernels.analytic import full_spec, kernel_fn_from_spec
    from ntkadv.kernels.blocked import n_blocks, ntk_gram_blocked
    from ntkadv.timing import Progress

    s, data_path, out_path = settings, inputs["data"], outputs["gram"]
    start = time.perf_counter()
    x_train, x_test = _inputs(data_path, s.x64)
    spec = full_spec(s.arch)
    kernel_fn = kernel_fn_from_spec(spec)
    b = s.block_size
    size = (len(x_train) + len(x_test)) * len(x_train) * 8
    attrs = _cache_attrs(data_path, ids, spec, s)
    with h5io.atomic_h5(out_path, attrs, expected_bytes=size) as f:
        for key, x1, x2 in [
            ("k_train_train", x_train, None),
            ("k_test_train", x_test, x_train),
        ]:
            shape, t0 = (len(x1), len(x_train)), time.perf_counter()
            chunks = (min(b, shape[0]), min(b, shape[1]))
            out = f.create_dataset(key, shape, dtype=np.float64, chunks=chunks)
            total = n_blocks(shape[0], shape[1], b, symmetric=x2 is None)
            progress = Progress(log, f"{key} blocks", total)
            ntk_gram_blocked(kernel_fn, x1, x2, b, out=out, progress=progress)
            if not np.all(np.isfinite(out[()])):
                raise FloatingPointError(f"{key} has non-finite entries")
            log.info("%s %s (%s): %.1f s", key, shape, spec, time.perf_counter() - t0)
        f.attrs["wall_time_s"] = time.perf_counter() - start
    _log_device_memory(log)


def compute_ntk_input_jacobian(
    inputs: dict[str, str],
    outputs: dict[str, str],
    settings: KernelSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """D(x) = ∂Θ(x, X_train)/∂x at every test point (supp. Eq. 9), to HDF5: the
    factored form, or for dense families only the inputs and a checked first row
    (consumers recompute D, `ntkadv.kernels.jacobians.ImplicitJacobian`).

    Args:
        inputs: ``data`` (the prepared dataset).
        outputs: ``jacobian`` (the input-Jacobian cache).
        settings: the architecture, block size and precision.
        ids: {dataset, arch}; log: the job's logger.
    """
    from ntkadv.kernels import jacobians
    from ntkadv.kernels.analytic import full_spec, kernel_fn_from_spec
    from ntkadv.timing import Progress

    s, data_path, out_path = settings, inputs["data"], outputs["jacobian"]
    x_train, x_test = _inputs(data_path, s.x64)
    spec = full_spec(s.arch)
    form = jacobians.jacobian_form(spec["family"])
    start = time.perf_counter()
    jacobians.write_input_jacobian(
        out_path,
        kernel_fn_from_spec(spec),
        form,
        x_test,
        x_train,
        s.block_size,
        _cache_attrs(data_path, ids, spec, s),
        progress=Progress(log, f"{form} Jacobian rows", len(x_test)),
    )
    log.info(
        "%s Jacobian of %d test x %d train points took %.2f s",
        form,
        len(x_test),
        len(x_train),
        time.perf_counter() - start,
    )
    _log_device_memory(log)
