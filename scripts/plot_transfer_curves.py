"""Rule plot_transfer_curves: cosine similarity and robust accuracies vs epoch."""

from _common import setup_logging


def main(smk) -> None:
    setup_logging(smk.log[0])
    import pandas as pd

    from ntkadv.plotting_transfer import plot_transfer_curves

    table = pd.read_csv(smk.input.epochs)
    fig = plot_transfer_curves(table, smk.wildcards.dataset, smk.params.title)
    fig.savefig(smk.output.figure, dpi=150)


if __name__ == "__main__":
    main(snakemake)
