"""Rule plot_adversarial_examples: clean, perturbation and NTK adversarial images."""

from _common import start


def main(smk) -> None:
    log = start(smk)
    import numpy as np

    from ntkadv import h5io
    from ntkadv.plotting import attacks as plotting_attacks

    path, p = smk.input.adversarial, smk.params.n_examples
    meta, attrs = h5io.read_attrs(path), h5io.read_attrs(smk.input.data)
    grid = h5io.read(path, ["x_clean", "y", "taus", "eps_values"])
    j = len(grid["taus"]) - 1  # t = inf
    e = int(np.argmin(np.abs(grid["eps_values"] / meta["eps"] - 1.0)))
    preds = {"clean": h5io.read(path, [f"f/clean/t{j}"])[f"f/clean/t{j}"][:p]}
    adversarial = {}
    for attack in ("fgsm", "pgd"):
        key = f"{attack}/t{j}_e{e}"
        try:
            arr = h5io.read(path, [f"f/{key}", f"x_adv/{key}"])
        except KeyError:  # this attack was not run at t = inf (budget)
            continue
        preds[attack], adversarial[attack] = (
            arr[f"f/{key}"][:p],
            arr[f"x_adv/{key}"][:p],
        )
    task = meta["task"]
    preds = {k: plotting_attacks.predicted_index(v, task) for k, v in preds.items()}
    fig = plotting_attacks.adversarial_examples(
        grid["x_clean"][:p],
        adversarial,
        preds,
        plotting_attacks.predicted_index(grid["y"][:p], task),
        attrs.get("class_names")  # data files before class_names: from the source
        or plotting_attacks.class_names(attrs["source"], attrs["classes"]),
        f"{smk.wildcards.dataset}, {smk.params.arch} NTK, f_∞, ε = {meta['eps']:.4g}"
        " (adv title green: still correct, red: fooled)",
    )
    fig.savefig(smk.output.figure, dpi=130, bbox_inches="tight")
    log.info("wrote %s", smk.output.figure)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
