"""Shared pytest set-up: float64 on, strict rank promotion, opt-in GPU tests."""

from __future__ import annotations

import functools
import os
import re
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


#: Session fixtures that run a whole workflow, and the test files reading each: a
#: group of files is one pytest-xdist work unit (one worker), so each run is
#: computed once per suite, not once per worker.
SHARED_RUNS = {
    "smoke_run": ("tests/workflow/test_workflow.py", "tests/workflow/test_report.py"),
    "smoke_null_run": (
        "tests/workflow/test_attacks_null.py",
        "tests/workflow/test_features_null.py",
    ),
}
#: Most workers the suite starts (`-n auto`): each slow test runs Snakemake on 2 cores.
MAX_WORKERS = 4


def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto` (pyproject addopts): one worker per usable core, at most
    `MAX_WORKERS` (PYTEST_XDIST_AUTO_NUM_WORKERS overrides; `-n 0` runs serially)."""
    return max(1, min(len(os.sched_getaffinity(0)), MAX_WORKERS))


@functools.cache
def _has_module_fixture(path: str) -> bool:
    """Whether a test file defines a module/class/package-scoped fixture (a cluster,
    a browser, a fitted model) that its tests share."""
    file = REPO / path
    text = file.read_text() if file.is_file() else ""
    return re.search(r"scope=[\"'](module|class|package)[\"']", text) is not None


def xdist_scope(nodeid: str) -> str:
    """The work unit of a test under pytest-xdist: its shared workflow run, else its
    file when the file shares a module-scoped fixture, else the test alone (free to
    go to any worker)."""
    path = nodeid.split("::", 1)[0]
    for run, files in SHARED_RUNS.items():
        if path in files:
            return run
    return path if _has_module_fixture(path) else nodeid


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Load-balance work units (`xdist_scope`) over the workers in collection order
    (xdist's own `xdist_group` marks rename node ids, which pytest 9 ignores)."""
    from xdist.scheduler import LoadScopeScheduling

    class SharedRunScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_scope(nodeid)

    return SharedRunScheduling(config, log)


def pytest_collection_modifyitems(config, items):
    for item in items:
        for run, files in SHARED_RUNS.items():
            if run in item.fixturenames and item.nodeid.split("::")[0] not in files:
                raise pytest.UsageError(
                    f"{item.nodeid} uses {run}: add its file to SHARED_RUNS in "
                    "tests/conftest.py (or it reruns the workflow on another worker)"
                )
    # Under xdist the longest units start first (the shared workflow runs, then the
    # other slow tests) and the unit tests fill the gaps; otherwise collection order.
    items.sort(
        key=lambda item: (
            not any(run in item.fixturenames for run in SHARED_RUNS),
            "slow" not in item.keywords,
        )
    )
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


def write_gzip_bomb(path: Path, size: int) -> None:
    """A gzip of a few hundred KB at `path` that inflates to `size` zero bytes."""
    import zlib

    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(2**20)
    with open(path, "wb") as f:
        for _ in range(size // len(zeros)):
            f.write(packer.compress(zeros))
        f.write(packer.flush())


@pytest.fixture(scope="session")
def gzip_bomb():
    """`write_gzip_bomb(path, size)`: a file that inflates past MNIST's size cap."""
    return write_gzip_bomb
