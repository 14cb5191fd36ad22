"""Config checks of the transfer stage (called by ntkadv.config.check_config)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ntkadv.config import fail


def check(config: Mapping[str, Any]) -> None:
    """The transfer kernel is a two-layer arch cached for every transfer dataset."""
    tr, archs = config["transfer"], config["architectures"]
    kernel_ds = config["kernels"]["datasets"]
    if not tr["datasets"]:
        return
    if tr["arch"] not in archs:
        fail("transfer.arch", f"unknown arch '{tr['arch']}'")
    if archs[tr["arch"]]["family"] != "twolayer":
        fail("transfer.arch", "must be of family 'twolayer'")
    for name in tr["datasets"]:
        if name not in kernel_ds:
            fail(
                "transfer.datasets",
                f"'{name}' has no kernel cache (kernels.datasets: {kernel_ds})",
            )
