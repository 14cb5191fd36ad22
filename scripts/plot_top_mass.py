"""Rule plot_top_mass: top-k eNTK norm concentration (main Fig. 5, supp. Fig. 7),
per regime: seed mean, each seed and the min-max band over seeds."""

from _common import start


def main(smk) -> None:
    start(smk)
    import numpy as np

    from ntkadv import h5io
    from ntkadv.plotting import dynamics as pd

    mass, model, colors = {}, {}, {}
    for path in smk.input.measures:
        a = h5io.read_attrs(path)
        spec = a["run_spec"]
        steps = spec["train_attack"] and spec["train_attack"]["steps"]
        label = pd.regime_label(a["regime"], steps)
        model[a["dataset"]] = spec["model"]
        colors[label] = pd.REGIME_COLORS[a["regime"]]
        for k in smk.params.mass_top_k:
            series = h5io.read(path, [f"mass_top{k}"])[f"mass_top{k}"]
            mass.setdefault((a["dataset"], k), {}).setdefault(label, []).append(series)
    mass = {key: {lb: np.stack(s) for lb, s in m.items()} for key, m in mass.items()}
    # main Fig. 5: top-20 (largest k) on CIFAR-10 (the cnn_mega dataset)
    k_main = max(smk.params.mass_top_k)
    main_ds = next((d for d, m in model.items() if m == "cnn_mega"), next(iter(model)))
    name = f"{pd.dataset_label(main_ds, smk.params.sources[main_ds])}: top-{k_main}"
    ylabel = {name: rf"$\sum_{{i\leq {k_main}}}\lambda_i^2 / \sum_i \lambda_i^2$"}
    fig = pd.mass_curves(
        {name: mass[(main_ds, k_main)]},
        ylabel,
        "eNTK norm concentration (main Fig. 5)",
        colors,
    )
    fig.savefig(smk.output.main, dpi=150, bbox_inches="tight")
    # supp. Fig. 7: every other (dataset, k)
    panels, ylabels = {}, {}
    for (ds, k), lines in mass.items():
        if (ds, k) != (main_ds, k_main) or len(mass) == 1:
            title = f"{pd.dataset_label(ds, smk.params.sources[ds])}: top-{k}"
            panels[title] = lines
            ylabels[title] = rf"$\sum_{{i\leq {k}}}\lambda_i^2 / \sum_i \lambda_i^2$"
    fig = pd.mass_curves(
        panels, ylabels, "Concentration of norm (supp. Fig. 7)", colors
    )
    fig.savefig(smk.output.supp, dpi=150, bbox_inches="tight")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
