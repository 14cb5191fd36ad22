"""Rule aggregate_transfer: per-epoch and per-run tables of every two-layer net."""

from _common import start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.transfer.summary import run_aggregate

    run_aggregate(smk.input.references, smk.input.runs, dict(smk.output), log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
