"""Rule plot_training_curves: clean / PGD train and test accuracy of every run."""

from _common import call, start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.plotting.dynamics import plot_training_curves

    call(smk, plot_training_curves, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
