"""Rule plot_transfer_gradients: loss-gradient images of nets and NTK (Fig. 1b)."""

from _common import call, start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.plotting.transfer import plot_transfer_gradients

    call(smk, plot_transfer_gradients, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
