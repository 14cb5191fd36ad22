"""Rule aggregate_notebook_reference: kernel rows + per-feature rows, one table."""

from _common import setup_logging


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    import pandas as pd

    parts = [pd.read_csv(p) for p in smk.input.tables]
    # nullable dtypes keep integer columns (eigen_index, n_test) integer across the
    # rows that lack them
    table = pd.concat(parts, ignore_index=True, sort=False).convert_dtypes()
    table["row"] = table["row"].fillna("eigenfeature")  # the features stage's rows
    table.to_csv(smk.output.table, index=False)
    log.info("%d rows from %s", len(table), list(smk.input.tables))


if __name__ == "__main__":
    main(snakemake)
