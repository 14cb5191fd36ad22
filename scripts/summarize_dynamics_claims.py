""""""

from _common import call, start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.dynamics.summary import summarize_dynamics_claims

    call(smk, summarize_dynamics_claims, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
