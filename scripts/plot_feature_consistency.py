"""Rule plot_feature_consistency: heatmaps of cross-architecture consistency."""

from _common import call, start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.plotting.features import plot_feature_consistency

    call(smk, plot_feature_consistency, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
