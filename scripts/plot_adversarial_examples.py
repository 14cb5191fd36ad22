"""Rule plot_adversarial_examples: clean, perturbation and NTK adversarial images."""

from _common import call, start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.plotting.attacks import plot_adversarial_examples

    call(smk, plot_adversarial_examples, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
