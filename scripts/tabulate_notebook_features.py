"""Rule tabulate_notebook_features: per-feature rows of the notebook reference."""

from _common import setup_logging


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    import pandas as pd

    from ntkadv import features

    table = pd.read_csv(smk.input.csv)
    n = int(smk.params.n_train)
    ref = list(smk.params.indices)
    mapped = features.scale_feature_indices(ref, n, smk.params.reference_n)
    # the notebook index each row stands for (identity when n_train = reference n)
    stands_for = {}
    for i in ref:
        j = int(features.scale_feature_indices([i], n, smk.params.reference_n)[0])
        stands_for.setdefault(j, i)
    rows = table[table["eigen_index"].isin(mapped)].copy()
    rows.insert(3, "notebook_index", rows["eigen_index"].map(stands_for))
    rows.insert(4, "n_train", n)
    rows.to_csv(smk.output.csv, index=False)
    log.info("notebook reference rows:\n%s", rows.to_string())


if __name__ == "__main__":
    main(snakemake)
