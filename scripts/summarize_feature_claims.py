""""""

from _common import call, start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.features.summary import summarize_feature_claims

    call(smk, summarize_feature_claims, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
