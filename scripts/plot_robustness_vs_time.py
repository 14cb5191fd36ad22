"""Rule plot_robustness_vs_time: clean and robust accuracy of f_t vs training time."""

from _common import setup_logging


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    import pandas as pd

    from ntkadv import plotting_attacks

    table = pd.read_csv(smk.input.accuracy)
    table = table[table["dataset"] == smk.wildcards.dataset]
    fig = plotting_attacks.robustness_vs_time(
        table, smk.wildcards.dataset, list(smk.config["architectures"])
    )
    fig.savefig(smk.output.figure, dpi=130)
    log.info("wrote %s (%d rows)", smk.output.figure, len(table))


if __name__ == "__main__":
    main(snakemake)
