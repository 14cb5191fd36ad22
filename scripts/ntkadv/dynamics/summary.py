"""CPU-side rules of the dynamics stage: kernel measurements and claims (no jax).

One task per rule, named after it (measure_kernel_dynamics,
summarize_dynamics_claims), with typed settings.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ntkadv import h5io
from ntkadv.dynamics import measures as dm
from ntkadv.dynamics.records import METRICS
from ntkadv.timing import timed


@dataclasses.dataclass(frozen=True)
class MeasureSettings:
    """Params of rule measure_kernel_dynamics.

    Attributes:
        mass_top_k: k of the top-k eigenvalue mass series.
        polar_top_k: k of the top-k eigenspace of the polar dynamics.
    """

    mass_top_k: tuple[int, ...]
    polar_top_k: int


@dataclasses.dataclass(frozen=True)
class DynamicsClaimSettings:
    """Params of rule summarize_dynamics_claims.

    Attributes:
        polar_top_k: k of the top-k eigenspace (findings 9, 11 and 12).
    """

    polar_top_k: int


def measure_kernel_dynamics(
    inputs: dict[str, str],
    outputs: dict[str, str],
    settings: MeasureSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule measure_kernel_dynamics: distances, polar dynamics, mass of a run."""
    run_path, mass_top_k = inputs["run"], list(settings.mass_top_k)
    attrs = h5io.read_attrs(run_path)
    num_classes = attrs["spec"]["num_classes"]
    with h5io.open_read(run_path) as f:
        kernels = f["kernels"]
        log.info("%s: kernels %s", run_path, kernels.shape)
        with timed(log, "Frobenius Gram of the series"):
            gram = dm.frobenius_gram(kernels)
        with timed(log, "per-epoch eigendecompositions"):
            out = dm.series_measures(
                kernels, num_classes, mass_ks=mass_top_k, space_k=settings.polar_top_k
            )
    out["distance"] = dm.distance_matrix(gram)
    out["frobenius_gram"] = gram
    out["consecutive_distance"] = dm.consecutive_distance(out["distance"])
    h5io.write(
        outputs["measures"],
        out,
        h5io.provenance(
            dataset=ids["dataset"],
            regime=ids["regime"],
            run_spec=attrs["spec"],
            kernel_inputs=attrs["kernel_inputs"],
            mass_top_k=mass_top_k,
            polar_top_k=settings.polar_top_k,
        ),
    )


@dataclasses.dataclass
class _Runs:
    """What the claims read from the run and measures files, per dataset."""

    measures: dict[str, dict] = dataclasses.field(default_factory=dict)
    series: dict[str, dict] = dataclasses.field(default_factory=dict)
    linearized: dict[str, dict] = dataclasses.field(default_factory=dict)
    info: dict[str, dict] = dataclasses.field(default_factory=dict)
    summary: list[dict] = dataclasses.field(default_factory=list)


def _run_summary(a: dict, m: dict, r: dict) -> dict:
    """The run summary row of one trained run (attrs a, measures m, metrics r)."""
    from ntkadv.dynamics import claims as dc

    return {
        "dataset": a["dataset"],
        "run": a["regime"],
        "seed": int(a["seed"]),
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


def _read_runs(
    measures: Sequence[str], runs: Sequence[str], linearized: Sequence[str]
) -> _Runs:
    """Measures and metric series of every run and linearised run, by dataset,
    regime (or linearisation epoch) and seed; the run summary rows."""
    from ntkadv.claims.core import majority_rate

    out = _Runs()
    for m_path, r_path in zip(measures, runs, strict=True):
        a = h5io.read_attrs(r_path)
        ds, regime, seed = a["dataset"], a["regime"], int(a["seed"])
        m, r = h5io.read(m_path), h5io.read(r_path, list(METRICS))
        out.measures.setdefault(ds, {}).setdefault(regime, {})[seed] = m
        out.series.setdefault(ds, {}).setdefault(regime, {})[seed] = r
        labels = np.asarray(a["labels_eval_test"])
        out.info[ds] = {
            "model": a["spec"]["model"],
            "majority": majority_rate(labels, a["spec"]["num_classes"]),
            "n_test": int(a["n_eval_test"]),
        }
        out.summary.append(_run_summary(a, m, r))
    for path in linearized:
        a, r = h5io.read_attrs(path), h5io.read(path, list(METRICS))
        ds, e = a["dataset"], int(a["lin_epoch"])
        out.linearized.setdefault(ds, {}).setdefault(e, {})[int(a["seed"])] = r
        out.info.setdefault(ds, {"majority": np.nan})["n_test"] = int(a["n_eval_test"])
        out.summary.append(
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
    return out


def _regime_rows(ds: str, runs: _Runs, k: int) -> list[dict]:
    """Findings 8-12 of one dataset (FGSM overfitting on MNIST's CNN only)."""
    from ntkadv.dynamics import claims as dc

    ms, series, meta = runs.measures[ds], runs.series[ds], runs.info[ds]
    gate = dc.Gate(
        *dc.training_gate(series, meta["majority"], meta["n_test"]),
        seed_job_s=dc.seed_seconds(series),
    )
    fig = f"results/figures/dynamics_{{}}_{ds}.png"
    rows = [
        dc.lazy_earlier(ds, ms, gate, fig.format("polar_full"), series),
        dc.top_concentration(ds, ms, k, gate, "results/figures/dynamics_mass_main.png"),
        dc.kernel_growth(ds, ms, gate, fig.format("kernels")),
        dc.top_space_rotation(ds, ms, k, gate, fig.format("polar_top")),
    ]
    if meta["model"] == "cnn":  # FGSM catastrophic overfitting is an MNIST claim
        rows.append(
            dc.fgsm_overfitting(
                ds,
                ms,
                series,
                k,
                meta["majority"],
                gate,
                "results/figures/dynamics_mass_supp.png",
            )
        )
    return rows


def _linearized_row(ds: str, runs: _Runs) -> dict:
    """Finding 13 of one dataset's linearised runs."""
    from ntkadv.dynamics import claims as dc

    info = runs.info[ds]
    series = runs.series.get(ds, {})
    gate = (
        dc.training_gate(series, info["majority"], info["n_test"])
        if series
        else (True, "")
    )
    return dc.linearized_gap(
        ds,
        runs.linearized[ds],
        series.get("pgd"),
        info["majority"],
        gate,
        figure=f"results/figures/dynamics_linearized_{ds}.png",
    )


def summarize_dynamics_claims(
    inputs: dict[str, list[str]],
    outputs: dict[str, str],
    settings: DynamicsClaimSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule summarize_dynamics_claims: findings 8-13 and the run summary table.

    Every statistic is computed per seed; the regime difference is tested against
    the seed-to-seed spread (:mod:`ntkadv.dynamics.claims`).
    """
    from ntkadv.claims.core import COLUMNS

    runs = _read_runs(inputs["measures"], inputs["runs"], inputs["linearized"])
    rows = []
    for ds in runs.measures:
        rows += _regime_rows(ds, runs, settings.polar_top_k)
    for ds in runs.linearized:
        rows.append(_linearized_row(ds, runs))
    table = pd.DataFrame(rows, columns=COLUMNS).sort_values("finding", kind="stable")
    table.to_csv(outputs["claims"], index=False)
    summary = pd.DataFrame(runs.summary)
    summary.to_csv(outputs["summary"], index=False, float_format="%.5g")
    log.info("claims:\n%s", table.to_string())
