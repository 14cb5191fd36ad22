"""Rule aggregate_notebook_reference: kernel rows + per-feature rows, one table."""

from _common import start


def main(smk) -> None:
    log = start(smk)
    import pandas as pd

    from ntkadv.attacks.tables import notebook_reference

    table = notebook_reference([pd.read_csv(p) for p in smk.input.tables])
    table.to_csv(smk.output.table, index=False)
    log.info("%d rows from %s", len(table), list(smk.input.tables))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
