"""Rule aggregate_attack_tables: join the per-kernel accuracy and gradient tables."""

from _common import setup_logging


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    import pandas as pd

    for key in ("accuracy", "checks"):
        table = pd.concat([pd.read_csv(p) for p in smk.input[key]], ignore_index=True)
        table.to_csv(smk.output[key], index=False)
        log.info("%s: %d rows from %d files", key, len(table), len(smk.input[key]))


if __name__ == "__main__":
    main(snakemake)
