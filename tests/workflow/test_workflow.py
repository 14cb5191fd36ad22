"""Workflow-level tests: lint, formatting, dry runs of every shipped config, config
validation, data errors, an end-to-end smoke run, crash safety and determinism."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from ntkadv import h5io
from ntkadv.configcheck import resolve_extends

REPO = Path(__file__).resolve().parents[2]
SHIPPED_CONFIGS = sorted(
    [
        REPO / "config.yaml",
        *REPO.glob("config/*.yaml"),
        *REPO.glob("tests/config/*.yaml"),
    ]
)
BIN = Path(sys.executable).parent


def run(args, cwd=REPO, check=True, timeout=1800, extra_env=None, **kw):
    """Run a command of the project's environment; return the CompletedProcess."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "JAX_PLATFORMS": "cpu"}
    env |= extra_env or {}
    proc = subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kw,
    )
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(map(str, args))} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def snakemake_command(workdir: Path, configfile: Path) -> list[str]:
    """The argv of `snakemake` below, for tests that start it with Popen."""
    return [
        str(BIN / "snakemake"),
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(configfile),
        "--cores",
        "2",
    ]


def snakemake(
    workdir: Path, configfile: Path, *args, check=True, timeout=1800, extra_env=None
):
    return run(
        [
            "snakemake",
            "--snakefile",
            REPO / "Snakefile",
            "--directory",
            workdir,
            "--configfile",
            configfile,
            "--cores",
            "2",
            *args,
        ],
        check=check,
        timeout=timeout,
        extra_env=extra_env,
    )


def write_config(tmp_path: Path, base: Path, **overrides) -> Path:
    """Copy a shipped config (its `extends` resolved) with absolute data dirs."""
    config = resolve_extends(yaml.safe_load(base.read_text()), str(REPO))
    config["data"]["search_dirs"] = [
        str((REPO / d).resolve()) for d in config["data"]["search_dirs"]
    ]
    for dotted, value in overrides.items():
        node = config
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


# ------------------------------------------------------------------ static checks


def test_snakemake_lint():
    proc = run(["snakemake", "--lint"], check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_snakefmt_check():
    run(["snakefmt", "--check", "Snakefile", "workflow"])


def test_ruff_check():
    run(["ruff", "check", "."])


def test_ruff_format_check():
    run(["ruff", "format", "--check", "."])


@pytest.mark.parametrize("configfile", SHIPPED_CONFIGS, ids=lambda p: p.name)
def test_dry_run_every_shipped_config(configfile, tmp_path):
    """The DAG builds and every target resolves, at every scale we ship."""
    cfg = write_config(tmp_path, configfile, **{"data.download": True})
    proc = snakemake(tmp_path, cfg, "-n", "--quiet", "rules")
    assert "prepare_dataset" in proc.stdout + proc.stderr


def test_paper_scale_doc_is_the_resource_scripts_output():
    """docs/paper_scale.md's table is what benchmarks/paper_resources.py prints for
    config/paper.yaml (the rules' own resource functions), row for row."""
    proc = run(["python", REPO / "benchmarks/paper_resources.py"])
    table = [line for line in proc.stdout.splitlines() if line.startswith("|")]
    doc = (REPO / "docs/paper_scale.md").read_text().splitlines()
    assert len(table) > 5
    assert [line for line in doc if line.startswith("|")][: len(table)] == table


def _slurm_profile() -> dict:
    return yaml.safe_load((REPO / "workflow/profiles/slurm/config.yaml").read_text())


def test_slurm_profile_is_accepted(tmp_path):
    """Every key of the slurm profile is accepted (test_slurm.py runs it on a real
    cluster and dry-runs it without conda on PATH)."""
    cfg = write_config(tmp_path, REPO / "config/paper.yaml")
    proc = snakemake(
        tmp_path,
        cfg,
        "-n",
        "--workflow-profile",
        REPO / "workflow/profiles/slurm",
        "--executor",
        "slurm",
        "-j",
        "4",
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    assert "Group job figures" in out and "Group job tables" in out


def test_slurm_profile_batches_every_tiny_rule(tmp_path):
    """Every figure and table rule is in a SLURM group (one queue slot for several
    jobs) and every grouped rule exists (test_slurm_profile_is_accepted: the dry run
    submits group jobs)."""
    profile = _slurm_profile()
    grouped = dict(entry.split("=") for entry in profile["groups"])
    rules = set(
        snakemake(
            tmp_path, REPO / "tests/config/smoke.yaml", "--list-rules"
        ).stdout.split()
    )
    tiny = {r for r in rules if r.startswith(("plot_", "aggregate_", "summarize_"))}
    assert tiny <= set(grouped), tiny - set(grouped)
    assert set(grouped) <= rules, set(grouped) - rules
    components = dict(entry.split("=") for entry in profile["group-components"])
    assert set(components) == set(grouped.values())


def test_local_profile_is_accepted(tmp_path):
    cfg = write_config(tmp_path, REPO / "tests/config/smoke.yaml")
    snakemake(
        tmp_path, cfg, "-n", "--workflow-profile", REPO / "workflow/profiles/local"
    )


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"kernels.blok_size": 10}, "blok_size"),
        ({"kernels.block_size": "ten"}, "ten"),
        ({"datasets.mnist.n_train": -5}, "-5"),
        ({"architectures.fc1.family": "resnet"}, "resnet"),
        ({"kernels.datasets": ["mnist", "svhn"]}, "svhn"),
        ({"dynamics.datasets.mnist.n_train": 10**6}, "dynamics.datasets.mnist.n_train"),
        ({"dynamics.datasets.mnist.ntk_block": 3}, "dynamics.datasets.mnist.ntk_block"),
        ({"dynamics.linearize.seeds": [7]}, "dynamics.linearize.seeds"),
    ],
)
def test_bad_config_fails_before_any_job(tmp_path, override, named):
    cfg = write_config(tmp_path, REPO / "tests/config/smoke.yaml", **override)
    proc = snakemake(tmp_path, cfg, "-n", check=False)
    assert proc.returncode != 0
    assert named in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    ("overrides", "absent"),
    [
        ({"attacks.notebook": None}, "tabulate_notebook_kernel"),
        ({"features.datasets": []}, "score_features"),
        ({"transfer.datasets": []}, "summarize_transfer_claims"),
        ({"dynamics.linearize.datasets": []}, "train_linearized_network"),
        (
            {"dynamics.regimes": [], "dynamics.linearize.datasets": []},
            "summarize_dynamics_claims",
        ),
        (
            {
                "kernels.datasets": [],
                "features.datasets": [],
                "transfer.datasets": [],
                "attacks.notebook": None,
            },
            "summarize_attack_claims",
        ),
    ],
    ids=[
        "no-notebook",
        "no-features",
        "no-transfer",
        "no-linearized",
        "no-regimes",
        "no-kernels",
    ],
)
def test_every_disabling_setting_builds_a_dag_without_that_stage(
    tmp_path, overrides, absent
):
    """Each "null / empty disables X" of the schema: the DAG builds, the disabled
    stage has no job (not even its claims job), the rest is unchanged."""
    cfg = write_config(tmp_path, REPO / "tests/config/smoke.yaml", **overrides)
    out = snakemake(tmp_path, cfg, "-n", "--quiet", "rules").stdout
    rules = {line.split()[0] for line in out.splitlines() if line.strip()}
    assert absent not in rules, out
    assert "aggregate_claims" in rules


def test_missing_data_is_named_and_leaves_nothing(tmp_path):
    cfg = write_config(
        tmp_path,
        REPO / "tests/config/smoke.yaml",
        **{"data.search_dirs": [str(tmp_path / "nowhere")], "data.download": False},
    )
    proc = snakemake(tmp_path, cfg, "results/data/mnist.h5", check=False)
    assert proc.returncode != 0
    assert "train-images-idx3-ubyte.gz" in proc.stdout + proc.stderr
    assert not (tmp_path / "results/data").exists()


def test_corrupt_data_is_named_and_leaves_nothing(tmp_path, shared_data):
    bad_dir = tmp_path / "bad"
    (bad_dir / "mnist").mkdir(parents=True)
    for f in (shared_data / "mnist").iterdir():
        payload = f.read_bytes()
        if f.name == "t10k-labels-idx1-ubyte.gz":
            payload = payload[:-20]
        (bad_dir / "mnist" / f.name).write_bytes(payload)
    cfg = write_config(
        tmp_path,
        REPO / "tests/config/smoke.yaml",
        **{"data.search_dirs": [str(bad_dir)], "data.download": False},
    )
    proc = snakemake(tmp_path, cfg, "results/data/mnist.h5", check=False)
    assert proc.returncode != 0
    log = (tmp_path / "results/logs/prepare_dataset/mnist.log").read_text()
    assert "t10k-labels-idx1-ubyte.gz" in log
    assert not (tmp_path / "results/data/mnist.h5").exists()
    assert not list((tmp_path / "results/data").glob("*"))


# ------------------------------------------------------------------ end to end


# the smoke_run fixture (one full run of tests/config/smoke.yaml per session, shared
# with test_report.py) is in conftest.py


@pytest.mark.slow
def test_smoke_run_builds_every_target_and_is_then_up_to_date(smoke_run):
    workdir, cfg = smoke_run
    proc = snakemake(workdir, cfg, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr
    h5_files = list((workdir / "results").rglob("*.h5"))
    assert h5_files
    for path in h5_files:  # every output carries provenance
        assert "numpy" in h5io.read_attrs(path), path
    assert list((workdir / "results/benchmarks").rglob("*.tsv"))
    assert not list((workdir / "results").rglob("*.tmp"))


@pytest.mark.slow
def test_rerun_gives_identical_arrays(smoke_run, tmp_path):
    # on a copy: forced reruns make the shared run's downstream outputs out of date
    workdir = tmp_path / "copy"
    shutil.copytree(smoke_run[0], workdir, symlinks=True)
    cfg = workdir / smoke_run[1].name
    targets = ["results/data/cifar2.h5", "results/ntk/cifar2/fc1/gram.h5"]
    before = [h5io.read(workdir / t) for t in targets]
    snakemake(
        workdir, cfg, *targets, "--forcerun", "prepare_dataset", "compute_ntk_gram"
    )
    for target, old in zip(targets, before, strict=True):
        new = h5io.read(workdir / target)
        assert new.keys() == old.keys()
        for key in old:
            np.testing.assert_array_equal(new[key], old[key], err_msg=f"{target}:{key}")


@pytest.mark.slow
def test_changing_one_architecture_reruns_only_its_jobs(smoke_run):
    workdir, cfg = smoke_run
    config = yaml.safe_load(cfg.read_text())
    config["architectures"]["fc2"]["b_std"] = 0.2
    out = snakemake(workdir, changed_config(workdir, config), "-n").stdout
    wildcards = [line for line in out.splitlines() if "wildcards:" in line]
    arch_jobs = [line for line in wildcards if "arch=" in line]
    assert any("compute_ntk_gram" in line for line in out.splitlines()), out
    assert arch_jobs, out
    assert all("arch=fc2" in line for line in arch_jobs), arch_jobs
    assert "prepare_dataset" not in out
    computed = {r for r in scheduled_rules(workdir, config) if r in COMPUTE_RULES}
    assert computed == {
        "compute_ntk_gram",
        "compute_ntk_input_jacobian",
        "eigendecompose_gram",
        "attack_ntk",
        "score_features",
    }, computed


@pytest.mark.slow
def test_negative_control_config_permutes_the_training_labels(
    smoke_run, smoke_null_run
):
    """tests/config/smoke_null.yaml (extends smoke.yaml): the data files carry a
    recorded permutation of the training labels; images and test labels are those
    of the default run."""
    targets = [f"results/data/{ds}.h5" for ds in ("mnist", "cifar2")]
    for target in targets:
        null, ref = h5io.read(smoke_null_run / target), h5io.read(smoke_run[0] / target)
        perm = null["label_permutation"]
        assert h5io.read_attrs(smoke_null_run / target)["permuted_labels"] is True
        assert (
            sorted(perm) == list(range(len(perm)))
            and (perm != np.arange(len(perm))).any()
        )
        np.testing.assert_array_equal(null["labels_train"], ref["labels_train"][perm])
        np.testing.assert_array_equal(null["y_train"], ref["y_train"][perm])
        for key in ("x_train", "x_test", "y_test", "labels_test"):
            np.testing.assert_array_equal(null[key], ref[key])


#: Rules whose jobs compute (kernels, attacks, features, training); a claims- or
#: plot-only config change must schedule none of them.
COMPUTE_RULES = {
    "prepare_dataset",
    "compute_ntk_gram",
    "compute_ntk_input_jacobian",
    "eigendecompose_gram",
    "attack_ntk",
    "compute_transfer_reference",
    "train_twolayer_net",
    "score_features",
    "evaluate_topr_kernels",
    "train_dynamics_network",
    "train_linearized_network",
    "measure_kernel_dynamics",
}


def changed_config(workdir: Path, config: dict) -> Path:
    """`config` written (key order kept) to a new file in `workdir`: tests on other
    xdist workers dry-run the same shared workdir at the same time."""
    fd, name = tempfile.mkstemp(prefix="changed-", suffix=".yaml", dir=workdir)
    with os.fdopen(fd, "w") as f:
        f.write(yaml.safe_dump(config, sort_keys=False))
    return Path(name)


def scheduled_rules(workdir: Path, config: dict) -> dict[str, int]:
    """rule -> number of jobs `snakemake -n` schedules for `config` in `workdir`."""
    path = changed_config(workdir, config)
    out = snakemake(workdir, path, "-n", "--quiet", "rules").stdout
    counts = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] not in ("total",):
            counts[parts[0]] = int(parts[1])
    counts.pop("all", None)
    return counts


def _sorted_keys(node):
    if isinstance(node, dict):
        return {k: _sorted_keys(node[k]) for k in sorted(node)}
    return node


@pytest.mark.slow
def test_config_with_sorted_keys_schedules_nothing(smoke_run):
    workdir, cfg = smoke_run
    config = yaml.safe_load(cfg.read_text())
    assert scheduled_rules(workdir, _sorted_keys(config)) == {}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("attacks.near_zero", 0.2, {"summarize_attack_claims", "aggregate_claims"}),
        ("attacks.example_arch", "fc2", {"plot_adversarial_examples"}),
        (
            "features.nonrobust_max",
            0.1,
            {"plot_feature_ru", "summarize_feature_claims", "aggregate_claims"},
        ),
        ("features.main_archs", ["fc1", "conv1"], {"plot_feature_ru"}),
        (
            "features.consistency_top",
            3,
            {
                "measure_feature_consistency",
                "plot_feature_consistency",
                "summarize_feature_claims",
                "aggregate_claims",
            },
        ),
        (
            "transfer.criteria.min_cosine",
            0.8,
            {"summarize_transfer_claims", "aggregate_claims"},
        ),
    ],
)
def test_claims_or_plot_key_reruns_only_its_jobs(smoke_run, key, value, expected):
    workdir, cfg = smoke_run
    config = yaml.safe_load(cfg.read_text())
    node = config
    *parents, leaf = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})  # smoke.yaml leaves some sections default
    node[leaf] = value
    rules = scheduled_rules(workdir, config)
    assert set(rules) == expected, rules
    assert not set(rules) & COMPUTE_RULES


@pytest.mark.slow
def test_compute_key_reruns_exactly_its_jobs(smoke_run):
    """features.topr.pgd_steps is consumed by evaluate_topr_kernels only."""
    workdir, cfg = smoke_run
    config = yaml.safe_load(cfg.read_text())
    config["features"]["topr"]["pgd_steps"] = 2
    rules = scheduled_rules(workdir, config)
    assert rules["evaluate_topr_kernels"] == len(config["features"]["datasets"])
    assert set(rules) & COMPUTE_RULES == {"evaluate_topr_kernels"}, rules


@pytest.mark.slow
def test_editing_a_library_module_reruns_exactly_the_jobs_importing_it(tmp_path):
    """Snakemake tracks a rule's script, not the library it imports; input.code
    (ntkadv.sources) adds the imported modules. On a copy of the workflow's code:
    an edit to a module prepare_dataset imports reruns it, an edit to one it does
    not import reruns nothing, and a new mtime alone (a checkout) reruns nothing."""
    code = tmp_path / "code"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in ("scripts", "workflow", "envs"):
        shutil.copytree(REPO / part, code / part, ignore=skip)
    shutil.copy(REPO / "Snakefile", code / "Snakefile")
    work = tmp_path / "work"
    cfg = write_config(tmp_path, REPO / "tests/config/smoke.yaml")
    target = "results/data/mnist.h5"

    def smk(*args) -> str:
        proc = run(
            ["snakemake", "--snakefile", code / "Snakefile", "--directory", work]
            + ["--configfile", cfg, "--cores", "1", target, *args]
        )
        return proc.stdout + proc.stderr

    smk()
    unrelated = code / "scripts/ntkadv/dynamics/claims.py"
    used = code / "scripts/ntkadv/data/subsets.py"
    later = time.time() + 60
    os.utime(used, (later, later))
    assert "Nothing to be done" in smk("-n")
    unrelated.write_text(unrelated.read_text() + "# an edit\n")
    assert "Nothing to be done" in smk("-n")
    used.write_text(used.read_text() + "# an edit\n")
    out = smk("-n")
    assert "prepare_dataset" in out and "subsets.py" in out, out


@pytest.mark.slow
def test_recopied_raw_files_rerun_nothing(tmp_path, shared_data):
    """Raw files are pinned by digest and checked whenever prepare_dataset runs, so a
    data folder copied anew (new mtimes, same bytes) must not rerun the workflow."""
    raw = tmp_path / "raw"
    shutil.copytree(shared_data / "mnist", raw / "mnist")
    cfg = write_config(tmp_path, REPO / "tests/config/smoke.yaml")
    config = yaml.safe_load(cfg.read_text())
    config["data"]["search_dirs"] = [str(raw), *config["data"]["search_dirs"]]
    cfg.write_text(yaml.safe_dump(config))
    target = "results/data/mnist.h5"
    snakemake(tmp_path, cfg, target)
    later = time.time() + 60
    for path in (raw / "mnist").iterdir():
        os.utime(path, (later, later))
    proc = snakemake(tmp_path, cfg, target, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr, proc.stdout


@pytest.mark.slow
def test_report_names_every_figure(smoke_run):
    workdir, cfg = smoke_run
    report = workdir / "report.html"
    snakemake(workdir, cfg, "--report", report)
    html = report.read_text(errors="replace")
    figures = sorted((workdir / "results/figures").glob("*.png"))
    assert figures
    missing = [f.name for f in figures if f.name not in html]
    assert not missing, missing
    assert "claims.md" in html and "claims.csv" in html  # the claims table too


@pytest.mark.slow
def test_killed_kernel_job_leaves_no_half_file_and_rerun_completes(tmp_path):
    """SIGKILL the Gram job while it writes; the output never exists half-written."""
    cfg = write_config(
        tmp_path,
        REPO / "tests/config/smoke.yaml",
        **{"datasets.mnist.n_train": 400, "kernels.block_size": 20},
    )
    target = "results/ntk/mnist/conv1/gram.h5"
    snakemake(tmp_path, cfg, "results/data/mnist.h5")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "JAX_PLATFORMS": "cpu"}
    args = snakemake_command(tmp_path, cfg)
    proc = subprocess.Popen([*args, target], env=env, start_new_session=True)
    out_dir = tmp_path / "results/ntk/mnist/conv1"
    deadline = time.time() + 300
    while time.time() < deadline and not list(out_dir.glob(".gram.h5.*")):
        if proc.poll() is not None:
            pytest.fail("the Gram job finished before it could be killed")
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out_dir / "gram.h5").exists()
    snakemake(tmp_path, cfg, "--unlock")  # a hard-killed snakemake leaves its lock
    snakemake(tmp_path, cfg, target, "--rerun-incomplete")
    gram = h5io.read(out_dir / "gram.h5")["k_train_train"]
    assert gram.shape == (400, 400)
    assert np.all(np.isfinite(gram))
    assert not list(out_dir.glob(".gram.h5.*"))
    assert not list((tmp_path / "results").rglob(".*.tmp")), "temporary files left"
