"""Rule download_raw_data: fetch raw MNIST / CIFAR-10 from the canonical URLs."""

from _common import setup_logging


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    from pathlib import Path

    from ntkadv.data import download_raw

    data_dir = Path(smk.output[0]).parent  # results/raw
    files = download_raw(smk.wildcards.source, data_dir)
    log.info("downloaded and verified %s", [str(f) for f in files])


if __name__ == "__main__":
    main(snakemake)
