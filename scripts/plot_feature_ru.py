"""Rule plot_feature_ru: R-U scatters of the first K eigenfeatures per architecture."""

from _common import start


def main(smk) -> None:
    start(smk)
    from ntkadv import h5io
    from ntkadv.plotting import features as pf

    panels = {}
    for path in smk.input.scores:
        s, a = h5io.read(path), h5io.read_attrs(path)
        first = s["indices"] < smk.params.top_k
        title = f"{a['dataset']} {pf.arch_label(a['arch'])} (m={a['n_eval']})"
        panels[(a["dataset"], a["arch"])] = {
            "index": s["indices"][first],
            "usefulness": s["usefulness"][first],
            "robustness": s["robustness"][first],
            "chance": 1.0 / len(a["classes"]),
            "title": title,
        }
    fig = pf.ru_grid(panels, smk.params.nonrobust_max, smk.params.title)
    fig.savefig(smk.output.png, dpi=150)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
