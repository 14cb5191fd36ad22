"""Rule plot_kernel_images: eNTK at init / after standard / after PGD training."""

from _common import call, start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.plotting.dynamics import plot_kernel_images

    call(smk, plot_kernel_images, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
