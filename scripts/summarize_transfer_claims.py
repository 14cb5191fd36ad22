"""Rule summarize_transfer_claims: finding 5 from the per-test-point run arrays."""

from _common import call, start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.transfer.summary import summarize_transfer_claims

    call(smk, summarize_transfer_claims, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
