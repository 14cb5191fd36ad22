"""Rule plot_feature_consistency: heatmaps of cross-architecture consistency."""

from _common import start


def main(smk) -> None:
    start(smk)
    import pandas as pd

    from ntkadv.plotting import features as pf

    table = pd.read_csv(smk.input.csv)
    archs = list(dict.fromkeys(table["arch_a"]))

    def wide(key):
        pivot = table.pivot(index="arch_a", columns="arch_b", values=key)
        return pivot.loc[archs, archs].to_numpy()

    perms = int(table["permutations"].iloc[0])
    fig = pf.consistency_heatmaps(
        archs,
        {
            "Spearman(robustness)\n(null: permuted labels)": (
                wide("spearman_robustness"),
                wide("spearman_robustness_null"),
            ),
            "Spearman(usefulness)\n(null: permuted labels)": (
                wide("spearman_usefulness"),
                wide("spearman_usefulness_null"),
            ),
            f"top-{smk.params.top} eigenspace overlap\n(mean cos², label-free)": (
                wide("subspace_overlap"),
                None,
            ),
        },
        f"{smk.wildcards.dataset}: consistency of NTK eigenfeatures across kernels "
        f"(null: mean over {perms} training-label permutations)",
    )
    fig.savefig(smk.output.png, dpi=150, bbox_inches="tight")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
