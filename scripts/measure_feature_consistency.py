""""""

from _common import call, start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.features.summary import measure_feature_consistency

    call(smk, measure_feature_consistency, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
