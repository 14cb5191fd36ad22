"""Rule prepare_dataset: verify the raw files and write the model-ready subset."""

from _common import start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.data import prepare

    prepare(list(smk.input.raw), smk.output.data, dict(smk.params.spec), log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
