"""Rule plot_transfer_curves: cosine similarity and robust accuracies vs epoch."""

from _common import call, start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.plotting.transfer import plot_transfer_curves

    call(smk, plot_transfer_curves, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
