"""Rule plot_training_curves: clean / PGD train and test accuracy of every run."""

from _common import start


def main(smk) -> None:
    start(smk)
    from ntkadv import h5io
    from ntkadv.dynamics.records import METRICS
    from ntkadv.plotting import dynamics as pd

    panels, eval_steps = {}, {}
    for path in smk.input.runs:
        a = h5io.read_attrs(path)
        attack = a["spec"]["train_attack"]
        label = pd.regime_label(a["regime"], attack and attack["steps"])
        name = pd.dataset_label(a["dataset"], smk.params.sources[a["dataset"]])
        title = f"{name}: {label} training"
        panels[title] = h5io.read(path, [m for m in METRICS if m.endswith("_acc")])
        eval_steps[name] = a["spec"]["eval_attack"]["steps"]
    robust = ", ".join(f"PGD-{k} on {ds}" for ds, k in eval_steps.items())
    fig = pd.accuracy_curves(
        panels, f"Training curves (robust accuracy: {robust})", len(smk.params.regimes)
    )
    fig.savefig(smk.output.png, dpi=150, bbox_inches="tight")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
