"""Rule measure_feature_consistency: cross-architecture feature consistency table."""

from _common import start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.features.summary import run_consistency

    p = smk.params
    run_consistency(
        list(p.archs),
        smk.input.scores,
        smk.input.eigh,
        smk.output.csv,
        smk.wildcards.dataset,
        p.top,
        p.top_k,
        p.null["permutations"],
        p.null["seed"],
        log,
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
