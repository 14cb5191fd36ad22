"""Rule eigendecompose_gram: Θ(X, X) = V diag(λ) Vᵀ, descending, clipped, to HDF5."""

from _common import ids, start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.spectra.task import eigendecompose_gram

    eigendecompose_gram(smk.input.gram, smk.output.eigh, ids(smk), log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
