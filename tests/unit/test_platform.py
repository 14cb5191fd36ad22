"""ntkadv.platform: the start-up warning for a GPU that CPU-only jax would ignore."""

from __future__ import annotations

import importlib.util

from ntkadv import platform


def test_device_files_count_as_gpus_without_nvidia_smi(tmp_path, monkeypatch):
    monkeypatch.setattr(platform.shutil, "which", lambda name: None)
    for name in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm"):
        (tmp_path / name).touch()
    assert platform.nvidia_gpus(tmp_path) == ["nvidia0", "nvidia1"]
    assert platform.nvidia_gpus(tmp_path / "empty") == []


def test_nvidia_smi_lines_are_the_gpus(tmp_path, monkeypatch):
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA A100 (UUID: GPU-x)'\necho junk\n")
    smi.chmod(0o755)
    monkeypatch.setattr(platform.shutil, "which", lambda name: str(smi))
    assert platform.nvidia_gpus(tmp_path) == ["GPU 0: NVIDIA A100 (UUID: GPU-x)"]


def test_warning_only_for_a_gpu_without_the_plugin():
    assert platform.gpu_mismatch([], plugin=False) is None
    assert platform.gpu_mismatch(["GPU 0"], plugin=True) is None
    msg = platform.gpu_mismatch(["GPU 0", "GPU 1"], plugin=False)
    assert msg is not None and "\n" not in msg
    assert "2 NVIDIA GPU(s)" in msg and platform.INSTALL_HINT in msg


def test_plugin_probe_matches_importlib():
    expected = importlib.util.find_spec(platform.CUDA_PLUGIN) is not None
    assert platform.cuda_plugin_installed() is expected
