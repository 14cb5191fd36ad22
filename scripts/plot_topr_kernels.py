"""Rule plot_topr_kernels: accuracy of the top-r robust kernels against r."""

from _common import start


def main(smk) -> None:
    start(smk)
    from ntkadv import h5io
    from ntkadv.claims.core import majority_rate
    from ntkadv.plotting import features as pf

    res, a = h5io.read(smk.input.topr), h5io.read_attrs(smk.input.topr)
    curves = {k: v.mean(axis=-1) for k, v in res.items() if k in pf.TOPR_KEYS}
    fig = pf.topr_curves(
        res["r"],
        curves,
        a,
        majority_rate(res["labels_eval"]),
        f"{a['dataset']} {pf.arch_label(a['arch'])}: top-r robust kernels "
        f"(ranked on {a['n_val']}, evaluated on {a['n_eval']} test points)",
        null_own=res["fgsm_own_sets"][1:].mean(axis=-1),
    )
    fig.savefig(smk.output.png, dpi=150, bbox_inches="tight")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
