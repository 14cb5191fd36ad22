"""Rule plot_accuracy_vs_eps: accuracy of f_∞ vs the l_inf budget per attack."""

from _common import call, start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.plotting.attacks import plot_accuracy_vs_eps

    call(smk, plot_accuracy_vs_eps, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
