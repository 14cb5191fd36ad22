"""Rule plot_polar_dynamics: polar eNTK dynamics in the full, top-k and bottom space."""

from _common import call, start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.plotting.dynamics import plot_polar_dynamics

    call(smk, plot_polar_dynamics, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
