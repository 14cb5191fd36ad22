"""Helpers of the workflow tests: rule -> conda env map, the import guard map and
the end-to-end smoke runs shared by every test of the session, on every worker."""

from __future__ import annotations

import fcntl
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
RULE_RE = re.compile(r"^rule (\w+):\n(.*?)(?=^rule |\Z)", re.S | re.M)


def rule_table() -> dict[str, dict[str, str | None]]:
    """rule -> {env, script, code} parsed from workflow/rules/*.smk (snakefmt
    layout); code is the script named in the rule's input.code."""
    table = {}
    for smk in sorted((REPO / "workflow/rules").glob("*.smk")):
        for name, body in RULE_RE.findall(smk.read_text()):
            env = re.search(r'conda:\s*\n\s*"\.\./\.\./envs/(\w+)\.yaml"', body)
            script = re.search(r'script:\s*\n\s*"\.\./\.\./scripts/(\w+)\.py"', body)
            code = re.search(r'code=script_sources\("(\w+)"\)', body)
            table[name] = {
                "env": env and env.group(1),
                "script": script and script.group(1),
                "code": code and code.group(1),
            }
    return table


def env_pip_list(env: str) -> list[str]:
    """The pip requirement strings of envs/<env>.yaml (resolved with dependencies)."""
    spec = yaml.safe_load((REPO / f"envs/{env}.yaml").read_text())
    reqs = [d["pip"] for d in spec["dependencies"] if isinstance(d, dict)]
    return [r for group in reqs for r in group]


def env_post_deploy_pins(env: str) -> list[str]:
    """Exact pins that envs/<env>.post-deploy.sh installs with pip --no-deps."""
    script = REPO / f"envs/{env}.post-deploy.sh"
    if not script.is_file():
        return []
    pins = []
    for line in script.read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if "install" in words and "--no-deps" in words:
            pins += [w for w in words if "==" in w]
    return pins


def env_requirements(env: str) -> list[str]:
    """Everything envs/<env>.yaml installs: its pip list and its post-deploy pins."""
    return env_pip_list(env) + env_post_deploy_pins(env)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(requirements: Iterable[str]) -> set[str]:
    """Installed distributions (normalised names) that `requirements` pull in."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        name = _norm(req.name)
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # e.g. the CUDA plugin, not installed on a CPU machine
        seen.add(name)
        for sub in dist.requires or []:
            child = Requirement(sub)
            extras = req.extras or {""}
            if child.marker is None or any(
                child.marker.evaluate({"extra": e}) for e in extras
            ):
                todo.append(child)
    return seen


def blocked_modules(env: str) -> list[str]:
    """Top-level modules installed here but absent from envs/<env>.yaml's closure."""
    allowed = closure(env_requirements(env)) | closure(["snakemake"])
    blocked = set()
    for module, dists in metadata.packages_distributions().items():
        if module in sys.stdlib_module_names or module.startswith("_"):
            continue
        if not any(_norm(d) in allowed for d in dists):
            blocked.add(module)
    return sorted(blocked - {"ntkadv"})


def import_guard_map() -> dict[str, dict]:
    """rule -> {env, blocked} for scripts/_common.guard_imports."""
    blocked = {}
    out = {}
    for rule, entry in rule_table().items():
        env = entry["env"]
        if env is None:
            continue
        if env not in blocked:
            blocked[env] = blocked_modules(env)
        out[rule] = {"env": env, "blocked": blocked[env]}
    return out


@pytest.fixture(scope="session")
def import_guard_file(tmp_path_factory) -> Path:
    """The import guard map written to a file (env var NTKADV_IMPORT_GUARD)."""
    path = tmp_path_factory.mktemp("guard") / "import_guard.json"
    path.write_text(json.dumps(import_guard_map()))
    return path


def shared_run(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]
) -> Path:
    """`build(workdir)` once per pytest session, by whichever pytest-xdist worker asks
    first; the other workers wait for it (an flock) and read the same directory, so a
    shared workflow run is computed once however its tests are distributed. A build
    that failed fails every later request at once (not recomputed). The directory is
    read-only to its tests: a test that runs jobs works on a copy."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the session's basetemp (workers get <it>/popen-gwN)
    workdir, done, failed = (root / f"{name}{s}" for s in ("", ".done", ".failed"))
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if failed.exists():
            pytest.fail(f"{name} failed in another worker:\n{failed.read_text()}")
        if not done.exists():
            workdir.mkdir()
            try:
                build(workdir)
            except BaseException as exc:  # pytest.fail raises a BaseException
                failed.write_text(f"{type(exc).__name__}: {str(exc)[-6000:]}")
                raise
            done.touch()
    return workdir


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, import_guard_file) -> tuple[Path, Path]:
    """One full run of the smoke config in a scratch directory, shared by every test
    of the session (test_workflow.py, test_report.py, test_point_shards.py) on every
    worker (`shared_run`): (workdir, config path). Every job runs under the import
    guard of its rule's conda env (scripts/_common.EnvImportGuard), so a script that
    imports what its env lacks fails the run."""
    from test_workflow import snakemake, write_config

    def build(workdir: Path) -> None:
        cfg = write_config(workdir, REPO / "tests/config/smoke.yaml")
        start = time.perf_counter()
        guard = {"NTKADV_IMPORT_GUARD": str(import_guard_file)}
        snakemake(workdir, cfg, timeout=5400, extra_env=guard)
        print(f"smoke run: {time.perf_counter() - start:.0f} s")

    workdir = shared_run(tmp_path_factory, "smoke_run", build)
    return workdir, workdir / "config.yaml"


#: What the two negative-control tests read (test_attacks_null.py,
#: test_features_null.py): the attack and feature stages of smoke_null.yaml.
NULL_ATTACK_TARGETS = [
    "results/tables/claims/attacks.csv",
    "results/tables/notebook_reference.csv",
    "results/figures/attacks_robustness_vs_time_cifar2.png",
    "results/figures/attacks_accuracy_vs_eps_cifar2.png",
]
NULL_FEATURE_TARGETS = [
    "results/tables/claims/features.csv",
    "results/figures/features_ru_main.png",
    *[
        f"results/figures/features_{name}_{ds}.png"
        for name in ("ru", "consistency", "topr", "gradients")
        for ds in ("mnist", "cifar2")
    ],
]


@pytest.fixture(scope="session")
def smoke_null_run(tmp_path_factory) -> Path:
    """One run of the attack and feature stages of tests/config/smoke_null.yaml
    (permuted training labels), shared by the negative-control tests on every worker
    (`shared_run`), so the kernels, Jacobians and eigendecompositions are computed
    once: the workdir."""
    from test_workflow import snakemake, write_config

    def build(workdir: Path) -> None:
        cfg = write_config(workdir, REPO / "tests/config/smoke_null.yaml")
        targets = [*NULL_ATTACK_TARGETS, *NULL_FEATURE_TARGETS]
        snakemake(workdir, cfg, *targets, timeout=3600)

    return shared_run(tmp_path_factory, "smoke_null_run", build)
