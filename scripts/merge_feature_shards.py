"""Rule merge_feature_shards: join one NTK's feature shards into its scores."""

from _common import call, start


def main(smk) -> None:
    log = start(smk, jax=True, x64=smk.params.settings["x64"])
    from ntkadv.features.task import merge_feature_shards

    call(smk, merge_feature_shards, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
