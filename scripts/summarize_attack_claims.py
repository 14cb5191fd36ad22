"""Rule summarize_attack_claims: findings 4, 6 and 15 against same-run nulls ± SE."""

from _common import start


def main(smk) -> None:
    log = start(smk)
    import pandas as pd

    from ntkadv.attacks.claims import attack_claims
    from ntkadv.attacks.pointwise import read_pointwise

    claims = attack_claims(
        [read_pointwise(p) for p in smk.input.pointwise],
        pd.read_csv(smk.input.checks),
        smk.params.notebook,
        float(smk.params.near_zero),
        int(smk.params.seed),
    )
    claims.to_csv(smk.output.claims, index=False)
    log.info("claims:\n%s", claims.to_string())


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
