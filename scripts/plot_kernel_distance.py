"""Rule plot_kernel_distance: epoch x epoch eNTK distance heatmaps per regime."""

from _common import call, start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.plotting.dynamics import plot_kernel_distance

    call(smk, plot_kernel_distance, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
