"""Config checks of the attack stage (called by ntkadv.config.check_config)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ntkadv.config import fail, ordered_archs


def check(config: Mapping[str, Any]) -> None:
    """Attacked architectures, the example kernel and the notebook kernel exist."""
    att, archs = config["attacks"], config["architectures"]
    kernel_ds = config["kernels"]["datasets"]
    attacked = list(att["architectures"] or ordered_archs(archs))
    for arch in attacked:
        if arch not in archs:
            fail("attacks.architectures", f"unknown arch '{arch}'")
    if att["example_arch"] not in attacked:
        fail(
            "attacks.example_arch",
            f"'{att['example_arch']}' is not attacked (attacked: {attacked})",
        )
    nb = att["notebook"]
    if nb and (nb["arch"] not in attacked or nb["dataset"] not in kernel_ds):
        fail(
            "attacks.notebook",
            f"{nb} must name an attacked architecture and a kernels.datasets entry",
        )
