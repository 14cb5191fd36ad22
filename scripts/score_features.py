"""Rule score_features: usefulness, FGSM robustness, gradient images of features."""

from _common import ids, settings, start


def main(smk) -> None:
    log = start(smk, jax=True, x64=smk.params.settings["x64"])
    from ntkadv.features.task import ScoreSettings, run_score_features

    s = settings(ScoreSettings, smk.params.settings)
    run_score_features(dict(smk.input), dict(smk.output), s, ids(smk), log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
