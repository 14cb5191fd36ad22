"""Rule download_raw_data: fetch raw MNIST / CIFAR-10 from the canonical URLs."""

from pathlib import Path

from _common import start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.data import download_raw

    files = download_raw(smk.wildcards.source, Path(smk.output[0]).parent)
    log.info("downloaded and verified %s", [str(f) for f in files])


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
