"""Snakemake-aware glue shared by the rule scripts (no math here)."""

from __future__ import annotations

import logging
import os
import sys
import time
from contextlib import contextmanager

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def setup_logging(log_path: str) -> logging.Logger:
    """Send stderr and the `logging` module to the rule's log file."""
    os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
    handle = open(log_path, "w", buffering=1)  # noqa: SIM115 - lives for the process
    sys.stderr = handle
    logging.basicConfig(
        stream=handle,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    return logging.getLogger("ntkadv")


def enable_x64(flag: bool) -> None:
    """Turn jax float64 on or off; call before any jax array is created."""
    import jax

    jax.config.update("jax_enable_x64", bool(flag))


def single_thread_xla(threads: int) -> None:
    """Pin XLA:CPU to one thread for 1-thread jobs (call before importing jax).

    Every JAX compute rule declares one thread (common.smk COMPUTE_THREADS): on the
    2-core development machine their CPU time / wall time was 0.9-1.2, so two 1-thread
    jobs side by side use the machine; pinning XLA keeps each job's thread pool from
    competing with the other job.
    """
    if threads == 1 and "jax" not in sys.modules:
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = (
            f"{flags} --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        ).strip()


@contextmanager
def timed(log: logging.Logger, what: str):
    """Log the wall time of a block; yields a dict that receives `seconds`."""
    out: dict[str, float] = {}
    start = time.perf_counter()
    yield out
    out["seconds"] = time.perf_counter() - start
    log.info("%s took %.2f s", what, out["seconds"])


def kernel_cache_attrs(smk, spec: dict) -> dict:
    """Provenance attrs of a kernel cache file (rules compute_ntk_gram/_jacobian)."""
    from ntkadv import h5io

    data_attrs = h5io.read_attrs(smk.input.data)
    return h5io.provenance(
        dataset=smk.wildcards.dataset,
        arch=smk.wildcards.arch,
        arch_spec=spec,
        kernel="ntk",
        dataset_spec=data_attrs.get("spec", {}),
        dataset_checksums=data_attrs.get("checksums", {}),
        source=str(smk.input.data),
        block_size=smk.params.block_size,
        x64=bool(smk.params.x64),
    )
