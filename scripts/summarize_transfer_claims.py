"""Rule summarize_transfer_claims: finding 5 from the per-epoch transfer table."""

from _common import start


def main(smk) -> None:
    log = start(smk)
    import pandas as pd

    from ntkadv.transfer.claims import transfer_claims

    claims = transfer_claims(pd.read_csv(smk.input.epochs), smk.params.criteria)
    claims.to_csv(smk.output.claims, index=False)
    log.info("claims:\n%s", claims.to_string())


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
