"""Rule attack_ntk: FGSM, PGD and first-order attacks on f_t of one NTK, all t, eps."""

from _common import call, start


def main(smk) -> None:
    log = start(smk, jax=True, x64=smk.params.settings["x64"])
    from ntkadv.attacks.task import attack_ntk

    call(smk, attack_ntk, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
