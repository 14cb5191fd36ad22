"""Rule download_raw_data: fetch a public source's raw files from its registry URLs."""

from _common import call, start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.data.task import download_raw_data

    call(smk, download_raw_data, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
