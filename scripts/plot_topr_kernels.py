"""Rule plot_topr_kernels: accuracy of the top-r robust kernels against r."""

from _common import call, start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.plotting.features import plot_topr_kernels

    call(smk, plot_topr_kernels, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
