"""Rule plot_kernel_distance: epoch x epoch eNTK distance heatmaps per regime."""

from _common import start


def main(smk) -> None:
    start(smk)
    from ntkadv import h5io
    from ntkadv.plotting import dynamics as pd

    panels = {}
    for regime, path in zip(smk.params.regimes, smk.input.measures, strict=True):
        steps = h5io.read_attrs(path)["run_spec"]["train_attack"]
        label = pd.regime_label(regime, steps and steps["steps"])
        panels[f"{label} training"] = h5io.read(path, ["distance"])["distance"]
    title = (
        f"{pd.dataset_label(smk.wildcards.dataset, smk.params.source)}: eNTK distance "
        "1 - sim(K_s, K_t) between epochs"
    )
    fig = pd.distance_heatmaps(panels, title)
    fig.savefig(smk.output.png, dpi=150, bbox_inches="tight")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
