"""Rule aggregate_attack_tables: join the per-kernel accuracy and gradient tables."""

from _common import call, start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.attacks.summary import aggregate_attack_tables

    call(smk, aggregate_attack_tables, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
