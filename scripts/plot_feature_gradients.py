"""Rule plot_feature_gradients: loss-gradient images of single eigenfeatures."""

from _common import call, start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.plotting.features import plot_feature_gradients

    call(smk, plot_feature_gradients, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
