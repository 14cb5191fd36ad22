"""Rule aggregate_notebook_reference: kernel rows + per-feature rows, one table."""

from _common import setup_logging


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    import pandas as pd

    parts = [pd.read_csv(p) for p in smk.input.tables]
    table = pd.concat(parts, ignore_index=True, sort=False)
    table.to_csv(smk.output.table, index=False)
    log.info("%d rows from %s", len(table), list(smk.input.tables))


if __name__ == "__main__":
    main(snakemake)
