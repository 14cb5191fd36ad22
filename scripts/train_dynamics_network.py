"""Rules train_dynamics_network and train_linearized_network: SGD (standard / FGSM /
PGD, optionally linearised, supp. E.1) tracking the eNTK every epoch, resumable."""

from _common import call, start


def main(smk) -> None:
    log = start(smk, jax=True)
    from ntkadv.dynamics.task import train_dynamics_network

    call(smk, train_dynamics_network, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
