"""Rule measure_feature_consistency: cross-architecture feature consistency table."""

from _common import setup_logging


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    from ntkadv import features, h5io

    top, archs = smk.params.top, list(smk.params.archs)
    adv, clean, vecs = {}, {}, {}
    for arch, scores, eigh in zip(archs, smk.input.scores, smk.input.eigh, strict=True):
        s = h5io.read(scores, ["indices", "correct_clean", "correct_adv"])
        first = s["indices"] < smk.params.top_k
        adv[arch], clean[arch] = s["correct_adv"][first], s["correct_clean"][first]
        vecs[arch] = h5io.read(eigh, ["eigvecs"])["eigvecs"][:, :top]
    table = features.consistency_table(adv, clean, vecs)
    table.insert(0, "dataset", smk.wildcards.dataset)
    table.to_csv(smk.output.csv, index=False)
    log.info("consistency:\n%s", table.to_string())


if __name__ == "__main__":
    main(snakemake)
