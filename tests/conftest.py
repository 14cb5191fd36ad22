"""Shared pytest set-up: float64 on, strict rank promotion, opt-in GPU tests."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import pytest  # noqa: E402

from ntkadv.compat import skip_tensorflow_interop  # noqa: E402

# before anything imports neural_tangents: TensorFlow is not installed
skip_tensorflow_interop()

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO.parent / "shared" / "data").resolve()


def pytest_addoption(parser):
    parser.addoption("--run-gpu", action="store_true", help="run tests marked gpu")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-gpu"):
        return
    skip = pytest.mark.skip(reason="needs --run-gpu")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def repo() -> Path:
    """The repository root."""
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only copy of MNIST / CIFAR-10 beside the repository."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"no dataset copy at {SHARED_DATA}")
    return SHARED_DATA
