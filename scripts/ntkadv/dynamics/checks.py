"""Config checks of the dynamics stage (called by ntkadv.configcheck.check_config)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ntkadv.config import fail


def check(config: Mapping[str, Any]) -> None:
    """Dynamics datasets exist and their sizes fit the prepared data; linearised
    datasets and seeds have PGD runs to branch off."""
    dyn, datasets = config["dynamics"], config["datasets"]
    for name, entry in dyn["datasets"].items():
        if name not in datasets:
            fail("dynamics.datasets", f"unknown dataset '{name}'")
        _check_sizes(f"dynamics.datasets.{name}", entry, datasets[name])
    lin = dyn["linearize"]
    for name in lin["datasets"]:
        if name not in dyn["datasets"]:
            fail(
                "dynamics.linearize.datasets",
                f"'{name}' has no dynamics.datasets entry",
            )
    if lin["datasets"] and "pgd" not in dyn["regimes"]:
        fail("dynamics.linearize.datasets", "linearised runs need the pgd regime")
    for name in lin["datasets"]:
        seeds = dataset_seeds(dyn, name)
        extra = sorted(set(lin["seeds"]) - set(seeds))
        if extra:
            fail(
                "dynamics.linearize.seeds",
                f"{extra} not in the {name} dynamics seeds {seeds} (a linearised "
                "run branches off the PGD run of its seed)",
            )


def dataset_seeds(dyn: Mapping[str, Any], name: str) -> list[int]:
    """Seeds of a dataset's runs: dynamics.datasets.<name>.seeds, else
    dynamics.seeds (the rule helper dynamics_seeds applies the same rule)."""
    own = dyn["datasets"][name].get("seeds")
    return list(own if own is not None else dyn["seeds"])


def _check_sizes(where: str, entry: Mapping[str, Any], data: Mapping[str, Any]):
    n_data, m_data = data["n_train"], data["n_test"]
    n = entry["n_train"] if entry["n_train"] is not None else n_data
    if n > n_data:
        fail(f"{where}.n_train", f"{n} exceeds datasets n_train {n_data}")
    if entry["n_eval_test"] is not None and entry["n_eval_test"] > m_data:
        fail(
            f"{where}.n_eval_test",
            f"{entry['n_eval_test']} exceeds datasets n_test {m_data}",
        )
    for key in ("batch_size", "kernel_batch"):
        if entry[key] > n:
            fail(f"{where}.{key}", f"{entry[key]} exceeds the {n} training images")
    block = entry["ntk_block"]
    if block and entry["kernel_batch"] % block:
        fail(
            f"{where}.ntk_block",
            f"{block} does not divide kernel_batch {entry['kernel_batch']}",
        )
