"""Rule plot_feature_consistency: heatmaps of cross-architecture consistency."""

from _common import start


def main(smk) -> None:
    start(smk)
    import pandas as pd

    from ntkadv.plotting import features as pf

    table = pd.read_csv(smk.input.csv)
    archs = list(dict.fromkeys(table["arch_a"]))
    wide = {
        k: table.pivot(index="arch_a", columns="arch_b", values=k)
        .loc[archs, archs]
        .to_numpy()
        for k in ("spearman_robustness", "subspace_overlap")
    }
    fig = pf.consistency_heatmaps(
        archs,
        wide["spearman_robustness"],
        wide["subspace_overlap"],
        smk.params.top,
        f"{smk.wildcards.dataset}: consistency of NTK eigenfeatures across kernels",
    )
    fig.savefig(smk.output.png, dpi=150)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
