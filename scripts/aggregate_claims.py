"""Rule aggregate_claims: join the per-stage claims rows into one table (CSV,
Markdown, and HTML for the report)."""

from _common import call, start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.claims.summary import aggregate_claims

    call(smk, aggregate_claims, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
