"""Config checks of the dynamics stage (called by ntkadv.config.check_config)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ntkadv.config import fail


def check(config: Mapping[str, Any]) -> None:
    """Dynamics datasets exist; linearised datasets have dynamics runs."""
    dyn, datasets = config["dynamics"], config["datasets"]
    for name in dyn["datasets"]:
        if name not in datasets:
            fail("dynamics.datasets", f"unknown dataset '{name}'")
    for name in dyn["linearize"]["datasets"]:
        if name not in dyn["datasets"]:
            fail(
                "dynamics.linearize.datasets",
                f"'{name}' has no dynamics.datasets entry",
            )
