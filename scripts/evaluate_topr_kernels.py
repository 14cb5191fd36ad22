"""Rule evaluate_topr_kernels: clean/FGSM/PGD accuracy of top-r robust kernels."""

from _common import ids, settings, start


def main(smk) -> None:
    log = start(smk, jax=True, x64=smk.params.settings["x64"])
    from ntkadv.features.task import ToprSettings, run_evaluate_topr

    s = settings(ToprSettings, smk.params.settings)
    run_evaluate_topr(dict(smk.input), dict(smk.output), s, ids(smk), log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
