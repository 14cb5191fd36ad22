"""Rule eigendecompose_gram: Θ(X, X) = V diag(λ) Vᵀ, descending, clipped, to HDF5."""

from __future__ import annotations

import logging
import time

from ntkadv import h5io
from ntkadv.spectra import eigh


def eigendecompose_gram(
    inputs: dict[str, str],
    outputs: dict[str, str],
    settings: None,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Eigendecompose the cached Θ(X_train, X_train); write eigvals / eigvecs.

    Args:
        inputs: ``gram`` (the kernel cache, dataset ``k_train_train`` (n, n)).
        outputs: ``eigh`` (eigvals (n,) descending, eigvecs (n, n)).
        settings: None (the rule consumes no params).
        ids: {dataset, arch}; log: the job's logger.
    """
    gram_path, out_path = inputs["gram"], outputs["eigh"]
    k = h5io.read(gram_path, ["k_train_train"])["k_train_train"]
    start = time.perf_counter()
    spec, info = eigh.eigendecompose_with_info(k, source=f"{gram_path}:k_train_train")
    log.info(
        "eigh of a %s Gram matrix took %.2f s", k.shape, time.perf_counter() - start
    )
    if spec.n_clipped:
        log.warning(
            "clipped %d eigenvalue(s) (smallest raw %.3e) up to the floor %.3e",
            spec.n_clipped,
            info["raw_min"],
            info["floor"],
        )
    log.info(
        "lambda_max %.4e, lambda_min %.4e (raw %.4e), condition number %.3e",
        spec.eigvals[0],
        spec.eigvals[-1],
        info["raw_min"],
        eigh.condition_number(spec),
    )
    attrs = h5io.provenance(
        **ids,
        n_clipped=spec.n_clipped,
        clip_floor=info["floor"],
        raw_min_eigval=info["raw_min"],
        order="descending",
        source=str(gram_path),
    )
    h5io.write(out_path, {"eigvals": spec.eigvals, "eigvecs": spec.eigvecs}, attrs)
