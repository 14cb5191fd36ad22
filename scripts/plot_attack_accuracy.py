"""Rules plot_robustness_vs_time and plot_accuracy_vs_eps: accuracy curves of the
kernel machine f_t from results/tables/attacks_accuracy.csv.

params.curve selects the figure: "time" (clean and robust accuracy vs training time,
ntkadv.plotting_attacks.robustness_vs_time) or "eps" (accuracy of f_∞ vs the l_inf
budget per attack, ntkadv.plotting_attacks.accuracy_vs_eps).
"""

from _common import start


def main(smk) -> None:
    log = start(smk)
    import pandas as pd

    from ntkadv.plotting import attacks as plotting_attacks

    plot = {
        "time": plotting_attacks.robustness_vs_time,
        "eps": plotting_attacks.accuracy_vs_eps,
    }[smk.params.curve]
    table = pd.read_csv(smk.input.accuracy)
    table = table[table["dataset"] == smk.wildcards.dataset]
    fig = plot(table, smk.wildcards.dataset, list(smk.params.archs))
    fig.savefig(smk.output.figure, dpi=130, bbox_inches="tight")
    log.info("wrote %s (%d rows)", smk.output.figure, len(table))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
