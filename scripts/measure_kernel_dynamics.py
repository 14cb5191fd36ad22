"""Rule measure_kernel_dynamics: distances, polar dynamics and top-k mass of a run."""

from _common import setup_logging, timed


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    import h5py

    from ntkadv import dynamics, h5io

    attrs = h5io.read_attrs(smk.input.run)
    num_classes = attrs["spec"]["num_classes"]
    with h5py.File(smk.input.run, "r") as f:
        kernels = f["kernels"]
        log.info("%s: kernels %s", smk.input.run, kernels.shape)
        with timed(log, "Frobenius Gram of the series"):
            gram = dynamics.frobenius_gram(kernels)
        with timed(log, "per-epoch eigendecompositions"):
            out = dynamics.series_measures(
                kernels,
                num_classes,
                mass_ks=smk.params.mass_top_k,
                space_k=smk.params.polar_top_k,
            )
    out["distance"] = dynamics.distance_matrix(gram)
    out["frobenius_gram"] = gram
    out["consecutive_distance"] = dynamics.consecutive_distance(out["distance"])
    h5io.write(
        smk.output.measures,
        out,
        h5io.provenance(
            dataset=smk.wildcards.dataset,
            regime=smk.wildcards.regime,
            run_spec=attrs["spec"],
            kernel_inputs=attrs["kernel_inputs"],
            mass_top_k=list(smk.params.mass_top_k),
            polar_top_k=smk.params.polar_top_k,
        ),
    )


if __name__ == "__main__":
    main(snakemake)
