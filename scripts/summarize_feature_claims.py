"""Rule summarize_feature_claims: claims rows for findings 1, 2, 3, 7 and 14."""

from _common import start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.features.summary import run_claims

    p, i = smk.params, smk.input
    run_claims(
        i.scores,
        i.consistency,
        i.topr,
        smk.output.csv,
        top_k=p.top_k,
        nonrobust_max=p.nonrobust_max,
        consistency_top=p.consistency_top,
        bands=dict(p.bands),
        frequency=dict(p.frequency),
        permutations=p.null["permutations"],
        seed=p.null["seed"],
        log=log,
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
