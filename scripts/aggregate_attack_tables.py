"""Rule aggregate_attack_tables: join the per-kernel accuracy and gradient tables."""

from _common import start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.attacks.tables import concat_csv

    for key in ("accuracy", "checks"):
        table = concat_csv(smk.input[key])
        table.to_csv(smk.output[key], index=False)
        log.info("%s: %d rows from %d files", key, len(table), len(smk.input[key]))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
