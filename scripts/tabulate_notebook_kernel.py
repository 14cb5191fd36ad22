"""Rule tabulate_notebook_kernel: clean/FGSM/PGD accuracy of the notebook's f_∞."""

from _common import start


def main(smk) -> None:
    log = start(smk)
    import pandas as pd

    from ntkadv.attacks.tables import notebook_kernel_row

    p = smk.params.reference
    row = notebook_kernel_row(
        pd.read_csv(smk.input.accuracy), p["notebook"], p["dataset"], p["pgd"]
    )
    pd.DataFrame([row]).to_csv(smk.output.table, index=False)
    log.info("notebook reference (kernel): %s", row)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
