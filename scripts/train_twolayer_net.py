"""Rule train_twolayer_net: full-batch GD of one wide two-layer net vs its NTK."""

from _common import call, start


def main(smk) -> None:
    log = start(smk, jax=True, x64=smk.params.settings["x64"])
    from ntkadv.transfer.task import train_twolayer_net

    call(smk, train_twolayer_net, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
