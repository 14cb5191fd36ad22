"""Rule tabulate_notebook_kernel: clean/FGSM/PGD accuracy of the notebook's f_∞."""

from _common import call, start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.attacks.summary import tabulate_notebook_kernel

    call(smk, tabulate_notebook_kernel, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
