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


#: Session fixtures that run a whole workflow: every test using one runs on the same
#: pytest-xdist worker, so each is computed once per suite, not once per worker.
SHARED_RUNS = ("smoke_run", "smoke_null_run")
#: Most workers the suite starts (`-n auto`): each slow test runs Snakemake on 2 cores.
MAX_WORKERS = 4


def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto` (pyproject addopts): one worker per usable core, at most
    `MAX_WORKERS` (PYTEST_XDIST_AUTO_NUM_WORKERS overrides; `-n 0` runs serially)."""
    return max(1, min(len(os.sched_getaffinity(0)), MAX_WORKERS))


def xdist_group(item: pytest.Item) -> str | None:
    """The work unit an item must share with others under `--dist loadgroup`: the
    shared workflow run it reads, else its module when it uses a module-scoped
    fixture (a cluster, a browser, a fitted model), else none (free to move)."""
    for name in SHARED_RUNS:
        if name in item.fixturenames:
            return name
    defs = getattr(item, "_fixtureinfo", None)
    for fixturedefs in defs.name2fixturedefs.values() if defs else ():
        if any(fd.scope in ("module", "class", "package") for fd in fixturedefs):
            return item.module.__name__
    return None


def pytest_collection_modifyitems(config, items):
    # Under xdist the longest units start first (the shared workflow runs, then the
    # other slow tests) and the unit tests fill the gaps; otherwise collection order.
    items.sort(
        key=lambda item: (
            not any(name in item.fixturenames for name in SHARED_RUNS),
            "slow" not in item.keywords,
        )
    )
    for item in items:
        group = xdist_group(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
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
