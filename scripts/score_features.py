"""Rule score_features: usefulness, FGSM robustness, gradient images of features."""

from _common import call, start


def main(smk) -> None:
    log = start(smk, jax=True, x64=smk.params.settings["x64"])
    from ntkadv.features.task import score_features

    call(smk, score_features, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
