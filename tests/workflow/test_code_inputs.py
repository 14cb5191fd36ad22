"""Precise reruns (issue 21): each rule's input.code (ntkadv.sources over its
script) holds the code its jobs run and nothing more, so an edit to the download
code or to the parse-time config checks reruns no figure or table.

Static: the rule table is parsed from workflow/rules/*.smk (conftest.rule_table)
and the code inputs computed as the workflow computes them (common.smk
script_sources); no snakemake run."""

from __future__ import annotations

import re

import pytest

from conftest import REPO, rule_table
from ntkadv.configcheck import STAGE_CHECKS
from ntkadv.sources import local_sources

SCRIPTS = REPO / "scripts"
#: Rules whose jobs only read results and draw or tabulate them.
REPORTING = re.compile(r"^(plot|aggregate|summarize|tabulate)_")
DOWNLOAD = "ntkadv/data/download.py"
#: The config-check code: parse-time loading and checks, and each stage's
#: ``check(config)`` module that `ntkadv.configcheck.check_config` calls.
CONFIG_CHECKS = {
    "ntkadv/configcheck.py",
    *(f"ntkadv/{stage}/checks.py" for stage in STAGE_CHECKS),
}


def _code(script: str) -> set[str]:
    return {
        p.relative_to(SCRIPTS).as_posix()
        for p in local_sources(SCRIPTS / f"{script}.py", root=SCRIPTS)
    }


@pytest.fixture(scope="module")
def code_inputs() -> dict[str, set[str]]:
    """rule -> its input.code files, relative to scripts/."""
    table = rule_table()
    out = {rule: _code(e["code"]) for rule, e in table.items() if e["code"]}
    assert len(out) > 30  # the parse found the rules
    return out


def test_the_checked_files_exist():
    for rel in [DOWNLOAD, *CONFIG_CHECKS]:
        assert (SCRIPTS / rel).is_file(), rel


def test_no_figure_or_table_job_runs_download_or_config_check_code(code_inputs):
    reporting = {r: files for r, files in code_inputs.items() if REPORTING.match(r)}
    assert {r.split("_")[0] for r in reporting} == {
        "plot",
        "aggregate",
        "summarize",
        "tabulate",
    }
    stale = {
        rule: sorted(files & (CONFIG_CHECKS | {DOWNLOAD}))
        for rule, files in reporting.items()
        if files & (CONFIG_CHECKS | {DOWNLOAD})
    }
    assert not stale, stale


def test_download_code_reruns_only_the_download(code_inputs):
    assert {r for r, files in code_inputs.items() if DOWNLOAD in files} == {
        "download_raw_data"
    }


def test_no_job_runs_the_parse_time_config_module(code_inputs):
    assert not [
        r for r, files in code_inputs.items() if "ntkadv/configcheck.py" in files
    ]


def test_the_job_side_config_imports_no_library_module():
    """ntkadv.config is in every job's code inputs (via scripts/_common.py): a
    library module it imported would be too, and its edits would rerun everything."""
    assert _code("ntkadv/config") == {"ntkadv/config.py"}


def test_every_job_shares_only_the_script_glue(code_inputs):
    """The files in every job's code inputs are those of scripts/_common.py (the
    entry helper every script starts with), nothing that one stage needs."""
    shared = set.intersection(*code_inputs.values())
    assert shared == _code("_common")
