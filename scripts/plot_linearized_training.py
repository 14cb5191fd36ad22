"""Rule plot_linearized_training: PGD training linearised after 0/25/50 epochs."""

from _common import start


def main(smk) -> None:
    start(smk)
    from ntkadv import h5io
    from ntkadv.dynamics.records import METRICS
    from ntkadv.plotting import dynamics as pd

    keys = [m for m in METRICS if m.endswith("_acc")]
    panels, marks = {}, {}
    for path in smk.input.runs:
        lin = h5io.read_attrs(path)["lin_epoch"]
        title = f"linearised after {lin} epochs"
        panels[title], marks[title] = h5io.read(path, keys), [lin]
    ref = h5io.read_attrs(smk.input.reference)
    steps = ref["spec"]["train_attack"]["steps"]
    panels["not linearised"] = h5io.read(smk.input.reference, keys)
    name = pd.dataset_label(smk.wildcards.dataset, smk.params.source)
    title = (
        f"{name}: linearised PGD-{steps} training "
        f"(robust = PGD-{ref['spec']['eval_attack']['steps']} accuracy)"
    )
    fig = pd.accuracy_curves(panels, title, marks=marks)
    fig.savefig(smk.output.png, dpi=150, bbox_inches="tight")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
