"""Rule plot_topr_kernels: accuracy of the top-r robust kernels against r."""

from _common import start


def main(smk) -> None:
    start(smk)
    from ntkadv import h5io
    from ntkadv.plotting import features as pf

    res, a = h5io.read(smk.input.topr), h5io.read_attrs(smk.input.topr)
    chance = 0.5 if a["task"] == "binary" else 0.1
    fig = pf.topr_curves(
        res["r"],
        res,
        a,
        chance,
        f"{a['dataset']} {pf.arch_label(a['arch'])}: top-r robust kernels "
        f"(ranked on {a['n_val']}, evaluated on {a['n_eval']} test points)",
    )
    fig.savefig(smk.output.png, dpi=150)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
