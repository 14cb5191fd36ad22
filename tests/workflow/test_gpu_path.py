"""The GPU workstation path: a visible GPU with the default CPU-only jax is named at
start-up (helpers/platform.smk), and the `cuda` extra is what the warning tells users to
install (its pins: test_envs.test_cuda_extra_pins_the_jax_env_cuda_stack)."""

from __future__ import annotations

import os

import pytest
from test_workflow import REPO, run

from ntkadv.platform import cuda_plugin_installed


@pytest.mark.skipif(cuda_plugin_installed(), reason="jax's CUDA plugin is installed")
def test_a_visible_gpu_with_cpu_jax_is_named_before_any_job(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    smi = fake / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA Fake (UUID: GPU-0)'\n")
    smi.chmod(0o755)
    path = f"{fake}{os.pathsep}{os.environ['PATH']}"
    proc = run(["snakemake", "-n", "--cores", "1"], extra_env={"PATH": path})
    out = proc.stdout + proc.stderr
    lines = [x for x in out.splitlines() if "NVIDIA GPU(s) visible" in x]
    assert len(lines) == 1, out[-2000:]
    assert "./uvw sync --extra cuda" in lines[0]
    clean = run(["snakemake", "-n", "--cores", "1"], cwd=REPO)
    assert "NVIDIA GPU(s) visible" not in clean.stdout + clean.stderr
