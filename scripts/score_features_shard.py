"""Rule score_features_shard: feature projections at a range of test points."""

from _common import call, start


def main(smk) -> None:
    log = start(smk, jax=True, x64=smk.params.settings["score"]["x64"])
    from ntkadv.features.task import score_features_shard

    call(smk, score_features_shard, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
