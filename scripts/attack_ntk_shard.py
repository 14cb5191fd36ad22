"""Rule attack_ntk_shard: every attack of one NTK at a range of evaluation points."""

from _common import call, start


def main(smk) -> None:
    log = start(smk, jax=True, x64=smk.params.settings["attack"]["x64"])
    from ntkadv.attacks.task import attack_ntk_shard

    call(smk, attack_ntk_shard, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
