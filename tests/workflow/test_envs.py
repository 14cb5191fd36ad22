"""The cluster conda envs pin exactly the versions of the local lock file."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def locked_versions() -> dict[str, str]:
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    return {p["name"]: p["version"] for p in lock["package"] if "version" in p}


def pinned(env_file: Path) -> dict[str, str]:
    env = yaml.safe_load(env_file.read_text())
    pins = {}
    for dep in env["dependencies"]:
        for spec in dep["pip"] if isinstance(dep, dict) else []:
            name, version = re.fullmatch(
                r"([A-Za-z0-9_.-]+)(?:\[.*\])?==(.+)", spec
            ).groups()
            pins[name.lower().replace("_", "-")] = version
    return pins


@pytest.mark.parametrize("env_file", sorted((REPO / "envs").glob("*.yaml")), ids=str)
def test_env_versions_agree_with_lock(env_file):
    locked = locked_versions()
    pins = pinned(env_file)
    assert pins, f"{env_file} pins nothing"
    for name, version in pins.items():
        assert locked.get(name) == version, (
            f"{env_file.name}: {name}=={version}, lock has {locked.get(name)}"
        )
