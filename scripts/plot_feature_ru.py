"""Rule plot_feature_ru: R-U scatters of the first K eigenfeatures per kernel."""

from _common import call, start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.plotting.features import plot_feature_ru

    call(smk, plot_feature_ru, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
