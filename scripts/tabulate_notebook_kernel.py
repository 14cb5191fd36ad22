"""Rule tabulate_notebook_kernel: clean/FGSM/PGD accuracy of the notebook's f_∞."""

from _common import setup_logging


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    import numpy as np
    import pandas as pd

    table = pd.read_csv(smk.input.accuracy)
    inf = table[np.isinf(table["tau"].astype(float))]
    at_eps = inf[(inf["attack"] == "clean") | np.isclose(inf["eps_mult"], 1.0)]
    acc = at_eps.set_index("attack")["accuracy"]
    spec, pgd = smk.params.dataset, smk.params.pgd
    row = {
        "row": "full_kernel",
        "dataset": smk.params.notebook["dataset"],
        "arch": smk.params.notebook["arch"],
        "eigen_index": "",
        "predictor": "f_inf",
        "n_train": spec["n_train"],
        "n_test": int(at_eps["n_eval"].iloc[0]),
        "selection": spec["selection"],
        "eps": spec["eps"],
        "pgd": f"PGD-{pgd['steps']} step {pgd['rel_step'] * spec['eps']:.4g}",
        "clean_acc": acc.get("clean", np.nan),
        "fgsm_acc": acc.get("fgsm", np.nan),
        "pgd_acc": acc.get("pgd", np.nan),
    }
    pd.DataFrame([row]).to_csv(smk.output.table, index=False)
    log.info("notebook reference (kernel): %s", row)


if __name__ == "__main__":
    main(snakemake)
