"""Rule aggregate_claims: join the per-stage claims rows into one table (CSV,
Markdown, and HTML for the report)."""

from _common import start


def main(smk) -> None:
    log = start(smk)
    from pathlib import Path

    import pandas as pd

    from ntkadv.claims.table import merge_claims, to_html, to_markdown

    stages = [Path(p).stem for p in smk.input.tables]
    table = merge_claims([pd.read_csv(p) for p in smk.input.tables], stages)
    table.to_csv(smk.output.csv, index=False)
    Path(smk.output.md).write_text(to_markdown(table))
    Path(smk.output.html).write_text(to_html(table), encoding="utf-8")
    log.info(
        "%d claims rows: %s", len(table), table["verdict"].value_counts().to_dict()
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
