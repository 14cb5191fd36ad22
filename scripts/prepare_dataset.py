"""Rule prepare_dataset: verify the raw files and write the model-ready subset."""

from _common import call, start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.data.task import prepare_dataset

    call(smk, prepare_dataset, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
