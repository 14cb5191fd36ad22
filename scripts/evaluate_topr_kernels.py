""", jax=True, x64=smk.params.settings["x64"]"""

from _common import call, start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.features.task import evaluate_topr_kernels

    call(smk, evaluate_topr_kernels, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
