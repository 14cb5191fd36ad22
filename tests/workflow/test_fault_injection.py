"""Fault injection at smoke scale that the other workflow modules do not cover
(docs/fault_injection.md has the table of every case and its test): SIGKILL of a
scoring job, a Gram swapped on disk for another target's or another run's, a disk
that reports no room for the Gram, a read-only results/, a second run on the same
directory, and the empty/null settings of the schema run to completion."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pandas as pd
import pytest
import yaml
from test_run_interrupt import processes_mentioning
from test_workflow import (
    REPO,
    scheduled_rules,
    snakemake,
    snakemake_command,
    write_config,
)

from ntkadv import h5io
from ntkadv.claims.core import COLUMNS

SMOKE = REPO / "tests/config/smoke.yaml"


def _console_error(proc: subprocess.CompletedProcess, rule: str) -> str:
    """The one console line naming the failed job's rule (what the user sees)."""
    lines = [
        line
        for line in (proc.stdout + proc.stderr).splitlines()
        if line.startswith(f"rule {rule}: ")
    ]
    assert lines, proc.stdout + proc.stderr
    return lines[0]


@pytest.mark.slow
def test_killed_scoring_job_leaves_no_output_and_rerun_completes(tmp_path):
    """SIGKILL score_features (and its Snakemake) while it projects features: no
    scores.h5/csv, no process left; the rerun completes, nothing temporary left."""
    cfg = write_config(tmp_path, SMOKE, **{"features.chunk": 1})
    pair = "mnist/fc1"
    scores = tmp_path / f"results/features/{pair}/scores.h5"
    log = tmp_path / f"results/logs/score_features/{pair}.log"
    snakemake(
        tmp_path,
        cfg,
        f"results/ntk/{pair}/jacobian.h5",
        f"results/spectra/{pair}/eigh.h5",
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "JAX_PLATFORMS": "cpu"}
    args = snakemake_command(tmp_path, cfg)
    target = str(scores.relative_to(tmp_path))
    proc = subprocess.Popen(
        [*args, target],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while not (log.exists() and "scoring " in log.read_text()):
        if proc.poll() is not None:
            pytest.fail("the scoring job finished before it could be killed")
        assert time.monotonic() < deadline, "the scoring job never started scoring"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the job and its Snakemake, no cleanup
    proc.wait()
    assert "done" not in log.read_text().splitlines()[-1], "killed too late"
    time.sleep(1)
    assert not processes_mentioning(str(tmp_path)), processes_mentioning(str(tmp_path))
    assert not scores.exists() and not scores.with_suffix(".csv").exists()
    snakemake(tmp_path, cfg, "--unlock")  # a hard-killed snakemake leaves its lock
    snakemake(tmp_path, cfg, target, "--rerun-incomplete")
    assert h5io.read(scores)
    assert not pd.read_csv(scores.with_suffix(".csv")).empty
    assert not list((tmp_path / "results").rglob(".*.tmp")), "temporary files left"


@pytest.mark.slow
def test_gram_swapped_for_another_targets_fails_its_consumer(tmp_path):
    """mnist/fc1's Gram replaced by another architecture's (same shape, valid
    digests), another dataset's, or another run's of the same target:
    eigendecompose_gram fails naming the file, why, the producer rule and the fix;
    the fix then works."""
    cfg = write_config(tmp_path, SMOKE)
    others = ["mnist/fc2", "cifar2/fc1"]
    snakemake(
        tmp_path, cfg, *[f"results/ntk/{p}/gram.h5" for p in ["mnist/fc1", *others]]
    )
    gram = tmp_path / "results/ntk/mnist/fc1/gram.h5"
    eigh = "results/spectra/mnist/fc1/eigh.h5"
    log = tmp_path / "results/logs/eigendecompose_gram/mnist/fc1.log"
    for other in others:
        gram.write_bytes((tmp_path / f"results/ntk/{other}/gram.h5").read_bytes())
        proc = snakemake(tmp_path, cfg, eigh, check=False)
        assert proc.returncode != 0
        expected = (
            "results/ntk/mnist/fc1/gram.h5: this file was written as "
            f"results/ntk/{other}/gram.h5, not results/ntk/mnist/fc1/gram.h5 "
            "(swapped in from another run or target); "
            "it is written by rule compute_ntk_gram: delete it and rerun (or run "
            "snakemake with --forcerun compute_ntk_gram)"
        )
        line = _console_error(proc, "eigendecompose_gram")
        assert line.startswith("rule eigendecompose_gram: H5IntegrityError: "), line
        assert expected in line, line
        assert expected in log.read_text()
        assert not (tmp_path / eigh).exists()
    # the same target from another run (another training subset: seed 1), read
    # alone by eigendecompose_gram: its recorded data file is not the one on disk
    run_b = tmp_path / "run_b"
    run_b.mkdir()
    snakemake(
        run_b, write_config(run_b, SMOKE, seed=1), "results/ntk/mnist/fc1/gram.h5"
    )
    gram.write_bytes((run_b / "results/ntk/mnist/fc1/gram.h5").read_bytes())
    proc = snakemake(tmp_path, cfg, eigh, check=False)
    assert proc.returncode != 0
    line = _console_error(proc, "eigendecompose_gram")
    assert line.startswith("rule eigendecompose_gram: H5IntegrityError: "), line
    assert (
        "results/ntk/mnist/fc1/gram.h5: it was computed from a different "
        "results/data/mnist.h5 than the one now on disk" in line
    ), line
    assert "it is written by rule compute_ntk_gram: delete it and rerun" in line
    assert not (tmp_path / eigh).exists()
    gram.unlink()  # the fix the message gives
    snakemake(tmp_path, cfg, eigh)
    assert h5io.read(tmp_path / eigh)["eigvals"].shape == (60,)


_FULL_DISK = """\
import os, shutil
_real, _full = shutil.disk_usage, os.environ["NTKADV_TEST_FULL_DISK"]
def _disk_usage(path):
    usage = _real(path)
    if os.path.abspath(path).startswith(_full):
        return type(usage)(usage.total, usage.total - 2**20, 2**20)
    return usage
shutil.disk_usage = _disk_usage
"""


@pytest.mark.slow
def test_full_disk_fails_the_gram_job_before_writing(tmp_path):
    """The disk under results/ntk reports 1 MB free (a sitecustomize in every job's
    Python): compute_ntk_gram fails in one console line naming the file, the space
    needed and the fix, and leaves no file; with the space back the rerun completes."""
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(_FULL_DISK)
    cfg = write_config(tmp_path, SMOKE)
    target = "results/ntk/mnist/fc1/gram.h5"
    snakemake(tmp_path, cfg, "results/data/mnist.h5")
    full = {
        "PYTHONPATH": os.pathsep.join(
            [str(inject), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
        "NTKADV_TEST_FULL_DISK": str(tmp_path / "results/ntk"),
    }
    proc = snakemake(tmp_path, cfg, target, check=False, extra_env=full)
    assert proc.returncode != 0
    line = _console_error(proc, "compute_ntk_gram")
    assert line.startswith(
        "rule compute_ntk_gram: OSError: [Errno 28] no space left"
    ), line
    assert "for gram.h5: needs ~" in line and "1 MB free" in line, line
    assert "free disk space or move results/" in line, line
    assert line.endswith(": 'results/ntk/mnist/fc1' [results/ntk/mnist/fc1]"), line
    out_dir = tmp_path / "results/ntk/mnist/fc1"
    assert not (out_dir / "gram.h5").exists()
    assert not list(out_dir.glob(".*.tmp"))
    snakemake(tmp_path, cfg, target)
    assert h5io.read(tmp_path / target)["k_train_train"].shape == (60, 60)


# ------------------------------------------------ empty / null settings, run


@pytest.mark.slow
def test_null_attacks_notebook_runs_the_attack_claims_without_its_row(tmp_path):
    """Restricted to the attack claims of one attacked architecture (fc1)."""
    cfg = write_config(
        tmp_path,
        SMOKE,
        **{"attacks.notebook": None, "attacks.architectures": ["fc1"]},
    )
    snakemake(tmp_path, cfg, "results/tables/claims/attacks.csv")
    claims = pd.read_csv(tmp_path / "results/tables/claims/attacks.csv")
    assert list(claims.columns) == COLUMNS
    assert {4, 6} <= set(claims["finding"])
    six = claims[claims["finding"] == 6]  # the pooled row of each dataset only
    assert sorted(six["dataset"]) == ["cifar2", "mnist"], six
    assert not six["note"].str.startswith("the paper's claim: notebook kernel").any()
    assert not (tmp_path / "results/tables/notebook_reference_kernel.csv").exists()


@pytest.mark.slow
def test_empty_features_and_regimes_run_the_default_target_to_completion(tmp_path):
    """Features off and no dynamics regime: the whole default target (claims
    table, notebook reference table, figures) runs to completion without them.
    Kept small: transfer off, one attacked architecture (fc1)."""
    cfg = write_config(
        tmp_path,
        SMOKE,
        **{
            "features.datasets": [],
            "transfer.datasets": [],
            "dynamics.regimes": [],
            "dynamics.linearize.datasets": [],
            "attacks.architectures": ["fc1"],
        },
    )
    snakemake(tmp_path, cfg)  # the default target, rule all
    dry = snakemake(tmp_path, cfg, "-n")
    assert "Nothing to be done" in dry.stdout + dry.stderr
    assert not (tmp_path / "results/dynamics").exists()
    assert list((tmp_path / "results/figures").glob("attacks_*.png"))
    claims = pd.read_csv(tmp_path / "results/tables/claims.csv")
    assert not claims.empty and {4, 6} <= set(claims["finding"])
    assert not (tmp_path / "results/features").exists()
    assert not (tmp_path / "results/tables/claims/features.csv").exists()
    notebook = pd.read_csv(tmp_path / "results/tables/notebook_reference.csv")
    assert not notebook.empty


def test_empty_dynamics_regimes_turn_the_dynamics_stage_off(tmp_path):
    """No regime (linearised runs need pgd: off too, as the config check asks): the
    default run schedules no dynamics job, not even its claims job, and the claims
    table no longer waits for results/tables/claims/dynamics.csv. (It used to
    schedule the dynamics plots, which failed on zero regimes.)"""
    config = yaml.safe_load(
        write_config(
            tmp_path,
            SMOKE,
            **{"dynamics.regimes": [], "dynamics.linearize.datasets": []},
        ).read_text()
    )
    rules = scheduled_rules(tmp_path, config)
    assert "aggregate_claims" in rules, rules
    assert not {r for r in rules if "dynamics" in r or "linearized" in r}, rules
    assert "summarize_attack_claims" in rules and "score_features" in rules


def _as_unprivileged(args: list[str]) -> list[str]:
    """`args` without root's power to ignore file modes when the tests run as root
    (CI): in a new user namespace the process keeps its uid, so the owner's
    permission bits apply to it, as they do to a researcher on a shared cluster."""
    return args if os.geteuid() != 0 else ["unshare", "--user", *args]


@pytest.mark.slow
def test_read_only_results_dir_is_refused_and_nothing_is_changed(tmp_path):
    """A results/ the user cannot write: a run that must create an output folder
    stops naming it; one that must overwrite a write-protected output is refused
    before any job (Snakemake's ProtectedOutputException); the existing output is
    untouched and no temporary appears."""
    cfg = write_config(tmp_path, SMOKE)
    target = "results/data/mnist.h5"
    results = tmp_path / "results"

    def run_unprivileged(*args: str) -> tuple[int, str]:
        proc = subprocess.run(
            _as_unprivileged([*snakemake_command(tmp_path, cfg), target, *args]),
            capture_output=True,
            text=True,
            env={**os.environ, "JAX_PLATFORMS": "cpu"},
            timeout=600,
        )
        return proc.returncode, proc.stdout + proc.stderr

    results.mkdir()
    results.chmod(0o555)
    code, out = run_unprivileged()
    assert code != 0
    assert "Failed to create output directory results/data." in out, out
    assert "Permission denied: 'results/data'" in out, out
    assert list(results.iterdir()) == []
    results.chmod(0o755)
    snakemake(tmp_path, cfg, target)  # as the owner: works
    before = (tmp_path / target).read_bytes()
    for path in [results, *results.rglob("*")]:
        path.chmod(path.stat().st_mode & 0o555)
    code, out = run_unprivileged("--forcerun", "prepare_dataset")
    assert code != 0
    assert "Write-protected output files for rule prepare_dataset" in out, out
    assert "Execute" not in out, "a job started"
    assert (tmp_path / target).read_bytes() == before
    assert not list(results.rglob("*.tmp"))
    for path in [results, *results.rglob("*")]:
        path.chmod(0o755)


#: Holds every rule script's Python (not Snakemake's) while $NTKADV_TEST_HOLD exists.
_HOLD = """\
import os, sys, time
_hold = os.environ.get("NTKADV_TEST_HOLD")
if _hold and sys.argv and "/.snakemake/scripts/" in sys.argv[0]:
    while os.path.exists(_hold):
        time.sleep(0.1)
"""


@pytest.mark.slow
def test_second_run_in_the_same_directory_is_refused_and_the_first_completes(
    tmp_path,
):
    """Two Snakemake runs on one directory: the second stops on Snakemake's lock
    without starting a job, the first completes and its outputs read back."""
    cfg = write_config(tmp_path, SMOKE)
    target = "results/spectra/mnist/fc1/eigh.h5"
    inject, hold = tmp_path / "inject", tmp_path / "hold"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(_HOLD)
    hold.touch()  # the first run's jobs wait while it exists
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": os.pathsep.join(
            [str(inject), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
        "NTKADV_TEST_HOLD": str(hold),
    }
    first = subprocess.Popen(
        [*snakemake_command(tmp_path, cfg), target],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    locks = tmp_path / ".snakemake/locks"
    deadline = time.monotonic() + 300
    while not (locks.is_dir() and any(locks.iterdir())):
        assert first.poll() is None, "the first run ended before it took its lock"
        assert time.monotonic() < deadline, "the first run never took its lock"
        time.sleep(0.2)
    second = snakemake(tmp_path, cfg, target, check=False)
    out = second.stdout + second.stderr
    assert second.returncode != 0
    assert "LockException" in out and "cannot be locked" in out, out
    assert "Execute" not in out, "the second run started a job"
    assert first.poll() is None
    hold.unlink()
    first_out, _ = first.communicate(timeout=900)
    assert first.returncode == 0, first_out
    assert h5io.read(tmp_path / target)["eigvals"].shape == (60,)
    assert not list((tmp_path / "results").rglob("*.tmp"))
