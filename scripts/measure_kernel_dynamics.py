""""""

from _common import call, start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.dynamics.summary import measure_kernel_dynamics

    call(smk, measure_kernel_dynamics, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
