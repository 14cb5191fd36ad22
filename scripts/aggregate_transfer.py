"""Rule aggregate_transfer: per-epoch and per-run tables of every two-layer net."""

from _common import call, start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.transfer.summary import aggregate_transfer

    call(smk, aggregate_transfer, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
