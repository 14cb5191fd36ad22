"""Rule summarize_attack_claims: findings 4, 6 and 15 against same-run nulls ± SE."""

from _common import call, start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.attacks.summary import summarize_attack_claims

    call(smk, summarize_attack_claims, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
