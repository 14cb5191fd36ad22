"""Rule summarize_dynamics_claims: claims rows for findings 8-13 and a run summary."""

from _common import setup_logging


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    import numpy as np
    import pandas as pd

    from ntkadv import dynamics, h5io
    from ntkadv import dynamics_claims as dc
    from ntkadv.training import METRICS

    k = smk.params.polar_top_k
    measures, runs, models, summary = {}, {}, {}, []
    for m_path, r_path in zip(smk.input.measures, smk.input.runs, strict=True):
        a = h5io.read_attrs(r_path)
        ds, regime = a["dataset"], a["regime"]
        m, r = h5io.read(m_path), h5io.read(r_path, list(METRICS))
        measures.setdefault(ds, {})[regime] = m
        runs.setdefault(ds, {})[regime] = r
        models[ds] = a["spec"]["model"]
        summary.append(
            {
                "dataset": ds,
                "run": regime,
                "epochs": a["spec"]["epochs"],
                "settle_epoch": dynamics.settle_epoch(
                    m["radius_full"], smk.params.settle_fraction
                ),
                "final_angle_full": m["angle_full"][-1],
                "final_angle_top": m["angle_top"][-1],
                **{
                    f"mean_{key}": np.mean(m[key][1:])
                    for key in m
                    if key.startswith("mass_top")
                },
                "norm_growth": m["fro_norm"][-1] / m["fro_norm"][0],
                **{f"final_{key}": r[key][-1] for key in METRICS if key != "seconds"},
                "seconds_per_epoch": np.median(r["seconds"][1:]),
            }
        )
    lin, lin_n_test = {}, {}
    for path in smk.input.linearized:
        a, r = h5io.read_attrs(path), h5io.read(path, list(METRICS))
        lin.setdefault(a["dataset"], {})[a["lin_epoch"]] = r
        lin_n_test[a["dataset"]] = a["n_eval_test"]
        summary.append(
            {
                "dataset": a["dataset"],
                "run": f"pgd_lin{a['lin_epoch']}",
                "epochs": a["spec"]["epochs"],
                **{f"final_{key}": r[key][-1] for key in METRICS if key != "seconds"},
                "seconds_per_epoch": np.median(r["seconds"][1:]),
            }
        )
    rows = []
    for ds, ms in measures.items():
        rows += [
            dc.lazy_earlier(ds, ms, smk.params.settle_fraction),
            dc.top_concentration(ds, ms, k),
            dc.kernel_growth(ds, ms),
            dc.top_space_rotation(ds, ms, k),
        ]
        if models[ds] == "cnn":  # FGSM catastrophic overfitting is an MNIST claim
            rows.append(dc.fgsm_overfitting(ds, ms, runs[ds], k))
    rows += [dc.linearized_gap(ds, lr, lin_n_test[ds]) for ds, lr in lin.items()]
    table = pd.DataFrame(rows).sort_values("finding", kind="stable")
    table.to_csv(smk.output.claims, index=False)
    pd.DataFrame(summary).to_csv(smk.output.summary, index=False, float_format="%.5g")
    log.info("claims:\n%s", table.to_string())


if __name__ == "__main__":
    main(snakemake)
