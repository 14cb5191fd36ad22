"""Config checks of the features stage (called by ntkadv.config.check_config)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ntkadv.config import fail


def check(config: Mapping[str, Any]) -> None:
    """Feature datasets have kernel caches; named architectures exist."""
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
