"""Config checks of the features stage (called by ntkadv.configcheck.check_config)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ntkadv.config import fail


def check(config: Mapping[str, Any]) -> None:
    """Feature datasets have kernel caches; named architectures exist; evaluation
    sizes and indices lie inside every feature dataset's test subset; the
    finding-1 eigen-index bands are non-empty."""
    ft, archs = config["features"], config["architectures"]
    kernel_ds = config["kernels"]["datasets"]
    for name in ft["datasets"]:
        if name not in kernel_ds:
            fail(
                "features.datasets",
                f"'{name}' has no kernel cache (kernels.datasets: {kernel_ds})",
            )
    if not ft["datasets"]:
        return
    for key, arch in (
        ("image_arch", ft["image_arch"]),
        ("topr.arch", ft["topr"]["arch"]),
    ):
        if arch not in archs:
            fail(f"features.{key}", f"unknown arch '{arch}' (defined: {sorted(archs)})")
    for band in ("top", "tail"):
        lo, hi = ft["bands"][band]
        if not 0 <= lo < hi:
            fail(f"features.bands.{band}", f"[{lo}, {hi}) is not a band of indices")
    families = {spec["family"] for spec in archs.values()}
    for name in ft["datasets"]:
        n_test = config["datasets"][name]["n_test"]
        where = f"datasets.{name}.n_test = {n_test}"
        for family in sorted(families):
            n_eval = ft["n_eval"].get(family)
            if n_eval is not None and n_eval > n_test:
                fail(f"features.n_eval.{family}", f"{n_eval} exceeds {where}")
        if ft["image_test_index"] >= n_test:
            fail(
                "features.image_test_index",
                f"{ft['image_test_index']} is not a test point ({where})",
            )
        if ft["topr"]["n_val"] >= n_test:
            fail(
                "features.topr.n_val",
                f"{ft['topr']['n_val']} leaves no evaluation points ({where})",
            )
