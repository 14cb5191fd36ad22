"""The shipped SLURM profile on a real one-node SLURM cluster (slurm_cluster.py).

The profile under test is workflow/profiles/slurm/config.yaml itself, loaded and
changed only where this cluster must differ from a site's: the account (none: no
accounting here), the partitions (one partition `ci`) and the delay before the first
status check (40 s by default; 2 s keeps the run short). A subset of the smoke
config runs through it: data, GPU kernel jobs (gpu=1), CPU spectra, attacks, the
attack tables and claims (group `tables`) and two figures (group `figures`); a
separate two-rule Snakefile forces one job over its memory to check the retry with
doubled memory under SLURM's own memory enforcement.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from slurm_cluster import PARTITION, PARTITION_MAX_MIN, SlurmCluster, unavailable
from test_workflow import BIN, REPO, write_config

pytestmark = pytest.mark.slow

SHIPPED = REPO / "workflow/profiles/slurm/config.yaml"
#: Targets of the smoke config: every job kind of the attack branch, for two
#: datasets and one architecture (14 jobs, 12 SLURM submissions).
TARGETS = [
    "summarize_attack_claims",
    "results/figures/attacks_accuracy_vs_eps_mnist.png",
    "results/figures/attacks_accuracy_vs_eps_cifar2.png",
]
#: The memory hog: first request and what it allocates (MB); the job also holds two
#: snakemake processes (~300 MB), so the doubled request fits with room to spare.
HOG_FIRST_MB, HOG_ALLOC_MB = 1000, 1300
#: Seconds the hog holds its memory: without cgroups SLURM sees it by polling (1 s).
HOG_HOLD_S = 5
SUBMITTED = re.compile(r"Job (\S+) has been submitted with SLURM jobid (\d+)")
GPU_RULES = ("compute_ntk_gram", "compute_ntk_input_jacobian", "attack_ntk")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    with SlurmCluster(tmp_path_factory.mktemp("slurm")) as c:
        yield c


def ci_profile(directory: Path) -> Path:
    """The shipped profile with this cluster's account, partition and status
    check delay (everything else as shipped)."""
    profile = yaml.safe_load(SHIPPED.read_text())
    assert "software-deployment-method" not in profile  # runs without conda
    defaults = profile["default-resources"]
    del defaults["slurm_account"]
    profile["slurm-no-account"] = True
    defaults["slurm_partition"] = PARTITION
    for resources in profile["set-resources"].values():
        if "slurm_partition" in resources:
            resources["slurm_partition"] = PARTITION
    profile["slurm-init-seconds-before-status-checks"] = 2
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.yaml").write_text(yaml.safe_dump(profile))
    return directory


def run_snakemake(cluster: SlurmCluster, workdir: Path, *args, timeout=420):
    env = {
        **cluster.env,
        "PATH": f"{cluster.bin}:{BIN}:{os.environ['PATH']}",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "JAX_PLATFORMS": "cpu",
    }
    start = time.monotonic()
    proc = subprocess.run(
        [BIN / "snakemake", "--directory", workdir, *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    proc.wall_s = time.monotonic() - start
    return proc


def slurm_jobs(cluster: SlurmCluster) -> dict[str, dict[str, str]]:
    """Every job the cluster has seen (MinJobAge keeps finished ones): id -> fields."""
    out = cluster.run(["squeue", "-h", "-t", "all", "-o", "%i|%T|%C|%m|%l|%k"]).stdout
    jobs = {}
    for line in out.splitlines():
        jobid, state, cpus, mem, limit, comment = line.split("|")
        jobs[jobid] = dict(
            state=state, cpus=cpus, mem=mem, limit=limit, comment=comment
        )
    return jobs


def show_job(cluster: SlurmCluster, jobid: str) -> str:
    return cluster.run(["scontrol", "-d", "show", "job", jobid]).stdout


def test_smoke_subset_runs_under_slurm(cluster, tmp_path):
    """Every job of the run is a SLURM job that completed; GPU rules got a GPU;
    a group of figure jobs asks one CPU and one figure's memory."""
    cfg = write_config(
        tmp_path, REPO / "tests/config/smoke.yaml", **{"attacks.architectures": ["fc1"]}
    )
    profile = ci_profile(tmp_path / "profile")
    proc = run_snakemake(
        cluster,
        tmp_path,
        "--snakefile",
        REPO / "Snakefile",
        "--configfile",
        cfg,
        "--workflow-profile",
        profile,
        *TARGETS,
        timeout=900,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:] + cluster.log_tail()
    print(f"SLURM smoke subset: {proc.wall_s:.0f} s wall")
    for target in TARGETS[1:] + ["results/tables/claims/attacks.csv"]:
        assert (tmp_path / target).is_file(), target

    submitted = dict(SUBMITTED.findall(log))
    jobs = slurm_jobs(cluster)
    assert set(submitted.values()) <= set(jobs), (submitted, jobs)
    ours = {sid: jobs[sid] for sid in submitted.values()}
    print("SLURM jobs:", ours)
    assert all(j["state"] == "COMPLETED" for j in ours.values()), ours
    # 10 single jobs and 2 group jobs (tables: aggregate + claims; figures: 2 plots)
    assert len(ours) == 12, ours
    by_rule: dict[str, list[str]] = {}
    for sid, j in ours.items():
        by_rule.setdefault(re.sub(r"_wildcards_.*", "", j["comment"]), []).append(sid)
    for rule in ("prepare_dataset", "eigendecompose_gram", *GPU_RULES):
        assert len(by_rule[f"rule_{rule}"]) == 2, by_rule
    # Every job asks one CPU and a runtime the partition accepts.
    assert {j["cpus"] for j in ours.values()} == {"1"}, ours
    assert all(minutes(j["limit"]) <= PARTITION_MAX_MIN for j in ours.values())

    for rule in GPU_RULES:
        for sid in by_rule[f"rule_{rule}"]:
            assert "TresPerJob=gres:gpu:1" in show_job(cluster, sid), show_job(
                cluster, sid
            )
    for sid in by_rule["rule_eigendecompose_gram"] + by_rule["rule_prepare_dataset"]:
        assert "gpu" not in show_job(cluster, sid)

    # Group jobs ask what one member needs: one CPU and one member's memory, the
    # members running one after another (runtime: the sum of theirs). Without the
    # profile's `cores: 1` the two plots would ask 2 CPUs and twice the memory.
    member_mem, member_min = default_resource("mem_mb"), default_resource("runtime")
    for group, members in (
        ("rule_figures_plot_accuracy_vs_eps", 2),
        ("rule_tables_aggregate_attack_tables_summarize_attack_claims", 2),
    ):
        (sid,) = by_rule[group]
        assert ours[sid]["mem"] == f"{member_mem}M", ours[sid]
        assert minutes(ours[sid]["limit"]) == members * member_min, ours[sid]


def default_resource(name: str) -> int:
    """A default resource of the shipped profile on a first attempt."""
    expression = yaml.safe_load(SHIPPED.read_text())["default-resources"][name]
    return eval(str(expression), {"attempt": 1})


def minutes(limit: str) -> int:
    """Minutes of a SLURM time limit ([D-]HH:MM:SS or MM:SS)."""
    days, _, clock = limit.rpartition("-")
    parts = [int(x) for x in clock.split(":")]
    h, m, _s = [0] * (3 - len(parts)) + parts
    return int(days or 0) * 1440 + h * 60 + m


HOG_SNAKEFILE = f"""\
from ntkadv import sizing


rule all:
    input:
        "hog.txt",
        "gpu.txt",


rule hog:
    output:
        "hog.txt",
    resources:
        mem_mb=lambda wildcards, attempt: sizing.on_attempt({HOG_FIRST_MB}, attempt),
        runtime=10**6,
    shell:
        "python -c 'import time; b = bytes(range(256)) * ({HOG_ALLOC_MB} * 4096);"
        " time.sleep({HOG_HOLD_S})'"
        " && echo $SLURM_JOB_ID > {{output}}"


rule gpu:
    output:
        "gpu.txt",
    resources:
        gpu=1,
    shell:
        "echo $SLURM_JOB_ID $CUDA_VISIBLE_DEVICES > {{output}}"
"""


def test_job_over_memory_is_retried_with_doubled_memory(cluster, tmp_path):
    """A job that allocates more than its first mem_mb is killed by SLURM and
    retried (the profile's `retries`) with twice the memory; its runtime request
    (10^6 min) is capped by the profile below the partition's limit."""
    (tmp_path / "Snakefile").write_text(HOG_SNAKEFILE)
    profile = ci_profile(tmp_path / "profile")
    proc = run_snakemake(
        cluster,
        tmp_path,
        "--snakefile",
        tmp_path / "Snakefile",
        "--workflow-profile",
        profile,
        timeout=600,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:] + cluster.log_tail()
    print(f"SLURM memory retry: {proc.wall_s:.0f} s wall")
    jobs = slurm_jobs(cluster)
    hog = [sid for sid, j in jobs.items() if j["comment"] == "rule_hog"]
    submitted = [sid for _, sid in SUBMITTED.findall(log)]
    first, second = (sid for sid in submitted if sid in hog)
    # The job step running the rule is killed for memory; the batch job ends
    # FAILED (its step's exit code) or OUT_OF_MEMORY; slurmd's log names the kill.
    assert jobs[first]["state"] in ("FAILED", "OUT_OF_MEMORY"), jobs[first]
    kill = {
        "cgroup": rf"\[{first}\.\w+\] error: Detected \d+ oom-kill event",
        "polling": rf"\[{first}\.\w+\] error: .*exceeded memory limit",
    }[cluster.memory_enforcement]
    assert re.search(kill, (cluster.logs / "slurmd.log").read_text()), kill
    assert jobs[first]["mem"] == f"{HOG_FIRST_MB}M", jobs[first]
    assert jobs[second]["state"] == "COMPLETED", jobs[second]
    assert jobs[second]["mem"] == f"{2 * HOG_FIRST_MB}M", jobs[second]
    assert (tmp_path / "hog.txt").read_text().split() == [second]
    assert minutes(jobs[second]["limit"]) == PARTITION_MAX_MIN, jobs[second]
    # The gpu=1 job ran with a GPU of the node (CUDA_VISIBLE_DEVICES set by SLURM).
    gpu_job, device = (tmp_path / "gpu.txt").read_text().split()
    assert gpu_job in submitted and device.isdigit(), (gpu_job, device)
    assert "TresPerJob=gres:gpu:1" in show_job(cluster, gpu_job)


def test_profile_dry_runs_without_conda(tmp_path):
    """The shipped profile plans the paper-scale run with no conda on PATH, and no
    job asks for more than the profile's runtime cap."""
    profile = yaml.safe_load(SHIPPED.read_text())
    cap = int(dict(r.split("=") for r in profile["resources"])["runtime"])
    path = ":".join(
        p
        for p in [str(BIN), *os.environ["PATH"].split(":")]
        if not (Path(p) / "conda").exists()
    )
    proc = subprocess.run(
        [
            BIN / "snakemake",
            "-n",
            "--directory",
            tmp_path,
            "--snakefile",
            REPO / "Snakefile",
            "--workflow-profile",
            REPO / "workflow/profiles/slurm",
            "--configfile",
            write_config(tmp_path, REPO / "config/paper.yaml"),
        ],
        cwd=tmp_path,
        env={**os.environ, "PATH": path},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runtimes = [int(r) for r in re.findall(r"runtime=(\d+)", proc.stdout)]
    # Jobs above resources.max_job_min (a day) are split into shards or resumable
    # attempts (test_paper_limits.py), so no request reaches the profile's cap.
    assert runtimes and max(runtimes) <= cap
