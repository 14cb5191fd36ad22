"""Which accelerator the locked environment can use, checked before any job.

The default lock installs CPU jax. On a machine with an NVIDIA GPU that install runs
every rule on the CPU without a word, so the workflow warns once at start-up when it
sees a GPU (``/dev/nvidia0`` or ``nvidia-smi -L``) but jax's CUDA 12 plugin is not
installed; ``./uvw sync --extra cuda`` (pyproject.toml's ``cuda`` extra, pinned in
uv.lock) installs it. Nothing here imports jax: the check costs a file test and, only
where the driver tool exists, one ``nvidia-smi -L`` call.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

#: The module of jax's CUDA 12 plugin (jax-cuda12-plugin, the `cuda` extra).
CUDA_PLUGIN = "jax_cuda12_plugin"
INSTALL_HINT = "./uvw sync --extra cuda"


def nvidia_gpus(dev: Path = Path("/dev")) -> list[str]:
    """NVIDIA GPUs this machine shows: the lines of ``nvidia-smi -L`` or device files.

    Args:
        dev: the device directory (a parameter for tests).

    Returns:
        One description per GPU; empty when none is visible.
    """
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run(
                [smi, "-L"], capture_output=True, text=True, timeout=20, check=False
            ).stdout
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        gpus = [line for line in out.splitlines() if line.startswith("GPU ")]
        if gpus:
            return gpus
    return sorted(p.name for p in dev.glob("nvidia[0-9]*"))


def cuda_plugin_installed() -> bool:
    """Whether jax's CUDA 12 plugin is importable (without importing jax)."""
    return importlib.util.find_spec(CUDA_PLUGIN) is not None


def gpu_mismatch(gpus: list[str], plugin: bool) -> str | None:
    """The start-up warning when a GPU is visible but jax can only use the CPU.

    Args:
        gpus: visible GPUs (`nvidia_gpus`).
        plugin: whether the CUDA plugin is installed (`cuda_plugin_installed`).

    Returns:
        One line naming the GPU count and the install command, or None.
    """
    if not gpus or plugin:
        return None
    return (
        f"{len(gpus)} NVIDIA GPU(s) visible but jax is the CPU build: every rule runs "
        f"on the CPU. For the GPU run `{INSTALL_HINT}` once, then the same snakemake "
        "command (add --resources gpu=1 so GPU jobs do not share the device)."
    )
