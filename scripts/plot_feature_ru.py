"""Rule plot_feature_ru: R-U scatters of the first K eigenfeatures per architecture,
with the permuted-training-label null cloud."""

from _common import start


def main(smk) -> None:
    start(smk)
    from ntkadv.features.summary import ru_panel
    from ntkadv.plotting import features as pf

    p = smk.params
    panels = {}
    for path in smk.input.scores:
        panel = ru_panel(path, p.top_k, p.null["permutations"], p.null["seed"])
        panel["title"] = (
            f"{panel['dataset']} {pf.arch_label(panel['arch'])} (m={panel['m']})"
        )
        panels[(panel["dataset"], panel["arch"])] = panel
    title = f"{p.title}; grey: {p.null['permutations']} permuted training labels"
    fig = pf.ru_grid(panels, p.nonrobust_max, title)
    fig.savefig(smk.output.png, dpi=150, bbox_inches="tight")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
