"""Rule summarize_transfer_claims: finding 5 from the per-test-point run arrays."""

from _common import start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.transfer.summary import run_claims

    p = smk.params
    run_claims(
        list(smk.input.runs), smk.output.claims, p.criteria, p.align_epoch, p.seed, log
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
