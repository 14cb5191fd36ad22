"""Rule train_twolayer_net: full-batch GD of one wide two-layer net vs its NTK."""

from _common import ids, settings, start


def main(smk) -> None:
    log = start(smk, jax=True, x64=smk.params.settings["x64"])
    from ntkadv.transfer.task import NetSettings, run_net

    s = settings(NetSettings, smk.params.settings)
    width, seed = int(smk.wildcards.width), int(smk.wildcards.seed)
    run_net(dict(smk.input), smk.output.run, s, width, seed, ids(smk), log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
