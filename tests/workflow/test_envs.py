"""The cluster conda envs: pins agree with uv.lock, resolve for linux x86_64, and
every rule declares the env its script imports under (the smoke run enforces it with
scripts/_common.EnvImportGuard, see test_workflow.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import (
    REPO,
    blocked_modules,
    env_pip_list,
    env_post_deploy_pins,
    env_requirements,
    rule_table,
)

ENVS = sorted(p.stem for p in (REPO / "envs").glob("*.yaml"))
#: neural-tangents' TensorFlow interop: overridden out of uv.lock (pyproject.toml) and
#: kept out of the cluster env (envs/jax.post-deploy.sh installs neural-tangents
#: --no-deps); never imported (ntkadv.compat).
TF_INTEROP = {"tensorflow", "tf2jax"}


def locked_versions() -> dict[str, str]:
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    return {p["name"]: p["version"] for p in lock["package"] if "version" in p}


def pins(env: str) -> dict[str, str]:
    out = {}
    for spec in env_requirements(env):
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[.*\])?==([^;\s]+)", spec)
        assert match, f"envs/{env}.yaml: '{spec}' is not an exact pin"
        out[match.group(1).lower().replace("_", "-")] = match.group(2)
    return out


@pytest.mark.parametrize("env", ENVS)
def test_env_pins_agree_with_lock(env):
    locked = locked_versions()
    for name, version in pins(env).items():
        assert locked.get(name) == version, (
            f"envs/{env}.yaml: {name}=={version}, uv.lock has {locked.get(name)}"
        )


def test_jax_env_pins_one_jax_release():
    p = pins("jax")
    assert p["jax"] == p["jaxlib"] == p["jax-cuda12-plugin"] == locked_versions()["jax"]
    assert "[with_cuda]" in " ".join(env_requirements("jax"))


@pytest.mark.parametrize("env", ENVS)
def test_env_pip_part_resolves_for_linux_x86_64(env, tmp_path):
    """`uv pip compile` of the env's pip list for the cluster's platform (PyPI); the
    post-deploy (--no-deps) pins' own dependencies, TensorFlow interop aside, must be
    in that resolution."""
    resolved = _compile(env_pip_list(env), tmp_path)
    for name, version in pins(env).items():
        if f"{name}=={version}" not in env_post_deploy_pins(env):
            assert resolved.get(name) == version, (name, version, resolved.get(name))
    assert not TF_INTEROP & set(resolved), TF_INTEROP & set(resolved)
    for spec in env_post_deploy_pins(env):
        missing = _direct_deps(spec) - TF_INTEROP - set(resolved)
        assert not missing, (spec, missing)
    if env == "cpu":
        assert "jax" not in resolved and "jaxlib" not in resolved


def _compile(requirements: list[str], tmp_path: Path) -> dict[str, str]:
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("\n".join(requirements) + "\n")
    uv = [str(REPO / "uvw"), "pip", "compile", "--no-config", "--quiet", str(reqs)]
    uv += ["--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.11"]
    proc = subprocess.run(
        uv, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
    )
    if proc.returncode and "Failed to fetch" in proc.stderr:
        pytest.skip(f"PyPI unreachable: {proc.stderr[-300:]}")
    assert proc.returncode == 0, proc.stderr
    return dict(
        line.split("==", 1) for line in proc.stdout.splitlines() if "==" in line
    )


def _direct_deps(spec: str) -> set[str]:
    """Direct dependencies of an installed distribution (normalised names)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    dist = metadata.distribution(spec.split("==")[0])
    return {
        Requirement(r).name.lower().replace("_", "-")
        for r in dist.requires or []
        if "extra ==" not in r
    }


def test_cuda_extra_pins_the_jax_env_cuda_stack():
    """`./uvw sync --extra cuda` (GPU workstation) and envs/jax.yaml (cluster) install
    the same jax CUDA plugin and CUDA / cuDNN wheels, all pinned in uv.lock."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extra = {}
    for spec in project["optional-dependencies"]["cuda"]:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[.*\])?==(\S+)", spec)
        assert match, f"pyproject cuda extra: '{spec}' is not an exact pin"
        extra[match.group(1).lower()] = match.group(2)
    jax_env = pins("jax")
    locked = locked_versions()
    assert extra["jax-cuda12-plugin"] == locked["jax"]
    for name, version in extra.items():
        assert locked.get(name) == version == jax_env.get(name), name
    cuda_env = {n for n in jax_env if n.startswith(("nvidia-", "jax-cuda"))}
    assert cuda_env == set(extra), cuda_env ^ set(extra)


def test_every_rule_has_an_env_and_an_existing_script():
    table = rule_table()
    assert len(table) > 30
    for rule, entry in table.items():
        if rule == "all":
            continue
        assert entry["env"] in ENVS, (rule, entry)
        assert (REPO / "scripts" / f"{entry['script']}.py").is_file(), (rule, entry)
        assert entry["code"] == entry["script"], (rule, entry)  # input.code tracks it


def test_cpu_env_blocks_the_jax_stack():
    blocked = set(blocked_modules("cpu"))
    assert {"jax", "jaxlib", "flax", "optax", "neural_tangents"} <= blocked
    assert not {"numpy", "scipy", "h5py", "pandas", "matplotlib"} & blocked


def test_import_guard_refuses_what_the_env_lacks(tmp_path):
    """The guard itself: a cpu-env rule importing jax fails with the env named."""
    guard = tmp_path / "guard.json"
    guard.write_text(json.dumps({"r": {"env": "cpu", "blocked": ["jax", "flax"]}}))
    code = (
        "import _common; _common.guard_imports('r')\n"
        "import numpy\n"
        "try:\n    import jax\nexcept ModuleNotFoundError as e:\n    print(e)\n"
    )
    env = {**os.environ, "NTKADV_IMPORT_GUARD": str(guard)}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO / "scripts",
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "rule r imports 'jax'" in out and "envs/cpu.yaml" in out


def test_guard_map_covers_every_rule(import_guard_file: Path):
    mapping = json.loads(import_guard_file.read_text())
    assert set(mapping) == {r for r in rule_table() if r != "all"}


def test_every_hdf5_output_names_its_producer_in_read_errors():
    """ntkadv.h5io.PRODUCERS (used in every read error) matches the workflow."""
    from conftest import RULE_RE
    from ntkadv import h5io

    checked = 0
    for smk in sorted((REPO / "workflow/rules").glob("*.smk")):
        for rule, body in RULE_RE.findall(smk.read_text()):
            outputs = body.split("output:", 1)[-1].split("log:", 1)[0]
            for path in re.findall(r'"(results/[^"]+\.h5)"', outputs):
                sample = re.sub(r"\{(\w+)\}", lambda m: f"x{m.group(1)}1", path)
                named = h5io.WRITES_FOR.get(rule, rule)
                assert h5io.producer(sample) == named, (path, h5io.producer(sample))
                checked += 1
    assert checked >= 10
