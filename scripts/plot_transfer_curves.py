"""Rule plot_transfer_curves: cosine similarity and robust accuracies vs epoch."""

from _common import start


def main(smk) -> None:
    start(smk)
    import pandas as pd

    from ntkadv.plotting.transfer import plot_transfer_curves

    table = pd.read_csv(smk.input.epochs)
    p = smk.params
    fig = plot_transfer_curves(table, smk.wildcards.dataset, p.title, p.align_epoch)
    fig.savefig(smk.output.figure, dpi=150, bbox_inches="tight")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
