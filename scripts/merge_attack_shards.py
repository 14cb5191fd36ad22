"""Rule merge_attack_shards: join one NTK's attack shards into attack_ntk's outputs."""

from _common import call, start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.attacks.task import merge_attack_shards

    call(smk, merge_attack_shards, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
