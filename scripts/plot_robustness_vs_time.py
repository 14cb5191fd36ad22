"""Rule plot_robustness_vs_time: clean and robust accuracy of f_t vs training time."""

from _common import call, start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.plotting.attacks import plot_robustness_vs_time

    call(smk, plot_robustness_vs_time, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
