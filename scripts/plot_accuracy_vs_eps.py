"""Rule plot_accuracy_vs_eps: accuracy of f_∞ vs the l_inf budget per attack."""

from _common import setup_logging


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    import pandas as pd

    from ntkadv import plotting_attacks

    table = pd.read_csv(smk.input.accuracy)
    table = table[table["dataset"] == smk.wildcards.dataset]
    fig = plotting_attacks.accuracy_vs_eps(
        table, smk.wildcards.dataset, list(smk.config["architectures"])
    )
    fig.savefig(smk.output.figure, dpi=130)
    log.info("wrote %s (%d rows)", smk.output.figure, len(table))


if __name__ == "__main__":
    main(snakemake)
