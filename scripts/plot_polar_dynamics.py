"""Rule plot_polar_dynamics: polar eNTK dynamics in the full, top-k and bottom space."""

from _common import start


def main(smk) -> None:
    start(smk)
    from ntkadv import h5io
    from ntkadv.plotting import dynamics as pd

    name = pd.dataset_label(smk.wildcards.dataset, smk.params.source)
    k = smk.params.polar_top_k
    titles = {
        "full": f"{name}: polar dynamics of the eNTK (full space)",
        "top": f"{name}: polar dynamics of the top-{k} eigenspace",
        "bottom": f"{name}: polar dynamics of the bottom space (all but top {k})",
    }
    for space, out in (
        ("full", smk.output.full),
        ("top", smk.output.top),
        ("bottom", smk.output.bottom),
    ):
        curves = {}
        for path in smk.input.measures:
            a = h5io.read_attrs(path)
            attack = a["run_spec"]["train_attack"]
            label = pd.regime_label(a["regime"], attack and attack["steps"])
            m = h5io.read(path, [f"angle_{space}", f"radius_{space}"])
            curves[label] = (m[f"angle_{space}"], m[f"radius_{space}"])
        pd.polar_panels(curves, titles[space]).savefig(
            out, dpi=150, bbox_inches="tight"
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
