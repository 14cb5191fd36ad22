"""Rule eigendecompose_gram: Θ(X, X) = V diag(λ) Vᵀ, descending, clipped, to HDF5."""

from _common import setup_logging, timed


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    from ntkadv import h5io, spectra

    k = h5io.read(smk.input.gram, ["k_train_train"])["k_train_train"]
    with timed(log, f"eigh of a {k.shape} Gram matrix"):
        spec, info = spectra.eigendecompose_with_info(k)
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
        spectra.condition_number(spec),
    )
    attrs = h5io.provenance(
        dataset=smk.wildcards.dataset,
        arch=smk.wildcards.arch,
        n_clipped=spec.n_clipped,
        clip_floor=info["floor"],
        raw_min_eigval=info["raw_min"],
        order="descending",
        source=str(smk.input.gram),
    )
    arrays = {"eigvals": spec.eigvals, "eigvecs": spec.eigvecs}
    h5io.write(smk.output.eigh, arrays, attrs)


if __name__ == "__main__":
    main(snakemake)
