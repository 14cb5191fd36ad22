"""Rule tabulate_notebook_features: per-feature rows of the notebook reference."""

from _common import start


def main(smk) -> None:
    log = start(smk)
    import pandas as pd

    from ntkadv.features.summary import notebook_feature_rows

    p = smk.params
    rows = notebook_feature_rows(
        pd.read_csv(smk.input.csv), list(p.indices), int(p.n_train), p.reference_n
    )
    rows.to_csv(smk.output.csv, index=False)
    log.info("notebook reference rows:\n%s", rows.to_string())


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
