"""Rule plot_top_mass: top-k eNTK norm concentration (main Fig. 5, supp. Fig. 7)."""

from _common import call, start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.plotting.dynamics import plot_top_mass

    call(smk, plot_top_mass, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
