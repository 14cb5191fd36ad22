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


#: Session fixtures that run a whole workflow (tests/workflow/conftest.py): each is
#: computed once per suite by whichever worker asks first, the others wait for it
#: (tests/workflow/conftest.shared_run), so their tests go to any worker.
SHARED_RUNS = ("smoke_run", "smoke_null_run")
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
    """The work unit of a test under pytest-xdist: its file when the file shares a
    module-scoped fixture, else the test alone (free to go to any worker)."""
    path = nodeid.split("::", 1)[0]
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


#: The longest tests after the shared runs (node-id prefixes; 1.5-5 min each in a
#: whole-suite run on 2 cores): started first among the slow tests, so that no long
#: test is left for the end of the suite. Scheduling only.
LONGEST = (
    "tests/workflow/test_shipped_configs.py::test_shipped_config_runs_end_to_end",
    "tests/workflow/test_slurm.py",
    "tests/workflow/test_fault_injection.py::test_empty_features_and_regimes",
)


def schedule_rank(item: pytest.Item, builders: set[str]) -> tuple[int, int]:
    """Where a test starts under xdist (work units go out in collection order): the
    first test of each shared workflow run (`builders`: it computes the run), then
    the other slow tests (`LONGEST` first), then the other readers of a shared run
    (computed by then), then the other workflow tests (each starts Snakemake), then
    the unit tests, which fill the gaps at the end."""
    if item.nodeid in builders:
        return 0, 0
    if any(run in item.fixturenames for run in SHARED_RUNS):
        return 2, 0
    if "slow" not in item.keywords:
        return (3 if item.nodeid.startswith("tests/workflow/") else 4), 0
    long = [i for i, prefix in enumerate(LONGEST) if item.nodeid.startswith(prefix)]
    return 1, long[0] if long else len(LONGEST)


def pytest_collection_modifyitems(config, items):
    builders = set()
    for run in SHARED_RUNS:
        first = next((i for i in items if run in i.fixturenames), None)
        if first is not None:
            builders.add(first.nodeid)
    items.sort(key=lambda item: schedule_rank(item, builders))  # a stable sort
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
