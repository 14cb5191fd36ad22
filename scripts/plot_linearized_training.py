"""Rule plot_linearized_training: PGD training linearised after 0/25/50 epochs."""

from _common import call, start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.plotting.dynamics import plot_linearized_training

    call(smk, plot_linearized_training, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
