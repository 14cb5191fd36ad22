"""CPU-side rules of the dynamics stage: kernel measurements and claims (no jax)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ntkadv import h5io
from ntkadv.dynamics import measures as dm
from ntkadv.dynamics.records import METRICS
from ntkadv.timing import timed


def run_measure(
    run_path: str,
    out_path: str,
    mass_top_k: Sequence[int],
    polar_top_k: int,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule measure_kernel_dynamics: distances, polar dynamics, mass of a run."""

    attrs = h5io.read_attrs(run_path)
    num_classes = attrs["spec"]["num_classes"]
    with h5io.open_read(run_path) as f:
        kernels = f["kernels"]
        log.info("%s: kernels %s", run_path, kernels.shape)
        with timed(log, "Frobenius Gram of the series"):
            gram = dm.frobenius_gram(kernels)
        with timed(log, "per-epoch eigendecompositions"):
            out = dm.series_measures(
                kernels, num_classes, mass_ks=mass_top_k, space_k=polar_top_k
            )
    out["distance"] = dm.distance_matrix(gram)
    out["frobenius_gram"] = gram
    out["consecutive_distance"] = dm.consecutive_distance(out["distance"])
    h5io.write(
        out_path,
        out,
        h5io.provenance(
            **ids,
            run_spec=attrs["spec"],
            kernel_inputs=attrs["kernel_inputs"],
            mass_top_k=list(mass_top_k),
            polar_top_k=polar_top_k,
        ),
    )


def run_claims(
    measures: Sequence[str],
    runs: Sequence[str],
    linearized: Sequence[str],
    outputs: dict[str, str],
    polar_top_k: int,
    log: logging.Logger,
) -> None:
    """Rule summarize_dynamics_claims: findings 8-13 and the run summary table.

    Every statistic is computed per seed; the regime difference is tested against
    the seed-to-seed spread (:mod:`ntkadv.dynamics.claims`).
    """
    from ntkadv.claims.core import COLUMNS, majority_rate
    from ntkadv.dynamics import claims as dc

    k = polar_top_k
    by_ds: dict[str, dict] = {}
    run_series: dict[str, dict] = {}
    info: dict[str, dict] = {}
    summary = []
    for m_path, r_path in zip(measures, runs, strict=True):
        a = h5io.read_attrs(r_path)
        ds, regime, seed = a["dataset"], a["regime"], int(a["seed"])
        m, r = h5io.read(m_path), h5io.read(r_path, list(METRICS))
        by_ds.setdefault(ds, {}).setdefault(regime, {})[seed] = m
        run_series.setdefault(ds, {}).setdefault(regime, {})[seed] = r
        labels = np.asarray(a["labels_eval_test"])
        info[ds] = {
            "model": a["spec"]["model"],
            "majority": majority_rate(labels, a["spec"]["num_classes"]),
            "n_test": int(a["n_eval_test"]),
        }
        summary.append(
            {
                "dataset": ds,
                "run": regime,
                "seed": seed,
                "epochs": a["spec"]["epochs"],
                "mean_radius": dc.auc(m["radius_full"]),
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
    lin: dict[str, dict] = {}
    for path in linearized:
        a, r = h5io.read_attrs(path), h5io.read(path, list(METRICS))
        ds, e = a["dataset"], int(a["lin_epoch"])
        lin.setdefault(ds, {}).setdefault(e, {})[int(a["seed"])] = r
        info.setdefault(ds, {"majority": np.nan})["n_test"] = int(a["n_eval_test"])
        summary.append(
            {
                "dataset": ds,
                "run": f"pgd_lin{e}",
                "seed": int(a["seed"]),
                "epochs": a["spec"]["epochs"],
                **{f"final_{key}": r[key][-1] for key in METRICS if key != "seconds"},
                "seconds_per_epoch": np.median(r["seconds"][e + 1 :])
                if len(r["seconds"]) > e + 1
                else np.nan,
            }
        )
    rows = []
    for ds, ms in by_ds.items():
        meta = info[ds]
        gate = dc.Gate(
            *dc.training_gate(run_series[ds], meta["majority"], meta["n_test"]),
            seed_job_s=dc.seed_seconds(run_series[ds]),
        )
        fig = f"results/figures/dynamics_{{}}_{ds}.png"
        rows += [
            dc.lazy_earlier(ds, ms, gate, fig.format("polar_full"), run_series[ds]),
            dc.top_concentration(
                ds, ms, k, gate, "results/figures/dynamics_mass_main.png"
            ),
            dc.kernel_growth(ds, ms, gate, fig.format("kernels")),
            dc.top_space_rotation(ds, ms, k, gate, fig.format("polar_top")),
        ]
        if meta["model"] == "cnn":  # FGSM catastrophic overfitting is an MNIST claim
            rows.append(
                dc.fgsm_overfitting(
                    ds,
                    ms,
                    run_series[ds],
                    k,
                    meta["majority"],
                    gate,
                    "results/figures/dynamics_mass_supp.png",
                )
            )
    for ds, lr in lin.items():
        fig = f"results/figures/dynamics_linearized_{ds}.png"
        series = run_series.get(ds, {})
        gate = (
            dc.training_gate(series, info[ds]["majority"], info[ds]["n_test"])
            if series
            else (True, "")
        )
        rows.append(
            dc.linearized_gap(
                ds, lr, series.get("pgd"), info[ds]["majority"], gate, figure=fig
            )
        )
    table = pd.DataFrame(rows, columns=COLUMNS).sort_values("finding", kind="stable")
    table.to_csv(outputs["claims"], index=False)
    pd.DataFrame(summary).to_csv(outputs["summary"], index=False, float_format="%.5g")
    log.info("claims:\n%s", table.to_string())
