"""Rule summarize_feature_claims: claims rows for findings 1, 2, 3, 7 and 14."""

from _common import setup_logging


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    import pandas as pd

    from ntkadv import features, h5io

    p, rows, prop1 = smk.params.features, [], {}
    by_dataset: dict[str, dict] = {}
    for path in smk.input.scores:
        s, a = h5io.read(path), h5io.read_attrs(path)
        first = s["indices"] < p["top_k"]
        by_dataset.setdefault(a["dataset"], {"chance": 1 / len(a["classes"])})
        by_dataset[a["dataset"]][a["arch"]] = {
            "index": s["indices"][first],
            "usefulness": s["usefulness"][first],
            "robustness": s["robustness"][first],
        }
        if a["prop1"]:
            prop1[f"{a['dataset']}/{a['arch']}"] = a["prop1"]
    for ds, scores in by_dataset.items():
        chance = scores.pop("chance")
        rows += features.spectrum_claims(ds, scores, chance, p["nonrobust_max"])
    for path in smk.input.consistency:
        table = pd.read_csv(path)
        rows.append(
            features.consistency_claim(
                table["dataset"].iloc[0], table, p["consistency_top"]
            )
        )
    for path in smk.input.topr:
        res, a = h5io.read(path), h5io.read_attrs(path)
        rows.append(features.topr_claim(a["dataset"], a["task"], res))
    rows.append(features.proposition1_claim(prop1))
    out = pd.DataFrame(rows).sort_values("finding", kind="stable")
    out.to_csv(smk.output.csv, index=False)
    log.info("claims:\n%s", out.to_string())


if __name__ == "__main__":
    main(snakemake)
