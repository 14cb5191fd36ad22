"""Rule eigendecompose_gram: Θ(X, X) = V diag(λ) Vᵀ, descending, clipped, to HDF5."""

from _common import call, start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.spectra.task import eigendecompose_gram

    call(smk, eigendecompose_gram, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
