"""Rule aggregate_transfer: per-epoch and per-run tables and the finding-5 claims."""

from _common import setup_logging


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    import pandas as pd

    from ntkadv import h5io, twolayer

    references = {}
    for path in smk.input.references:
        references[h5io.read_attrs(path)["dataset"]] = h5io.read(
            path, ["epoch", "acc_clean", "acc_own"]
        )
    runs, summaries = [], []
    for path in smk.input.runs:
        meta = h5io.read_attrs(path)
        runs.append((meta, h5io.read(path, list(twolayer.METRICS))))
        summaries.append({k: meta[k] for k in twolayer.RUN_ATTRS})
    table = twolayer.epoch_table(runs, references)
    table.to_csv(smk.output.epochs, index=False)
    pd.DataFrame(summaries).to_csv(smk.output.runs, index=False)
    claims = twolayer.transfer_claims(table, smk.params.criteria)
    claims.to_csv(smk.output.claims, index=False)
    log.info("claims:\n%s", claims.to_string())


if __name__ == "__main__":
    main(snakemake)
