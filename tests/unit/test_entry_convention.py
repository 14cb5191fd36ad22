"""One entry convention for every rule script (scripts/_common.call).

A rule ``<rule>`` has the script ``scripts/<rule>.py``, which starts the job and
hands it to ``ntkadv.<stage>.task.<rule>`` (compute), ``ntkadv.<stage>.summary.<rule>``
(tables, claims) or ``ntkadv.plotting.<stage>.<rule>`` (figures) through
``call(smk, <rule>, log)``; the task's signature is ``(inputs, outputs, settings, ids,
log)`` and its ``settings`` annotation is a dataclass (or ``None`` for a rule that
consumes no params). Checked statically on the script's AST and on the task's
signature, so a new script that does its own I/O or math fails here.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import re
import sys
import typing
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
MODULE = re.compile(r"^ntkadv\.(\w+\.(task|summary)|plotting\.\w+)$")
PARAMS = ["inputs", "outputs", "settings", "ids", "log"]

RULE_SCRIPTS = sorted(p.stem for p in SCRIPTS.glob("*.py") if p.stem != "_common")


def entry_import(script: str) -> tuple[str, str]:
    """(module, name) of the task a script hands its job to, from its AST."""
    tree = ast.parse((SCRIPTS / f"{script}.py").read_text())
    calls = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "call"
    ]
    assert len(calls) == 1, f"scripts/{script}.py: one call(smk, <task>, log) expected"
    task = calls[0].args[1]
    assert isinstance(task, ast.Name), f"scripts/{script}.py: call a task by name"
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                if (alias.asname or alias.name) == task.id:
                    return node.module, alias.name
    raise AssertionError(f"scripts/{script}.py: {task.id} is not imported")


@pytest.mark.parametrize("script", RULE_SCRIPTS)
def test_script_follows_the_entry_convention(script: str) -> None:
    module, name = entry_import(script)
    assert name == script, f"scripts/{script}.py runs {name}, not {script}"
    assert MODULE.match(module), f"scripts/{script}.py: task module {module}"
    lines = (SCRIPTS / f"{script}.py").read_text().count("\n")
    assert lines <= 40, f"scripts/{script}.py has {lines} lines"
    sys.path.insert(0, str(SCRIPTS))
    task = getattr(importlib.import_module(module), name)
    assert list(inspect.signature(task).parameters) == PARAMS
    kind = typing.get_type_hints(task)["settings"]
    assert kind is type(None) or dataclasses.is_dataclass(kind), kind


@dataclasses.dataclass(frozen=True)
class S:
    eps: float


class Named(dict):
    """Stands in for Snakemake's Namedlist (its items() are name, value)."""


def test_call_builds_typed_settings_and_named_files(tmp_path) -> None:
    """`call` hands the task its named files (lists as lists, no code inputs; a
    table as a temporary moved into place when the task returns), typed settings
    from params.settings and every wildcard."""
    sys.path.insert(0, str(SCRIPTS))
    from types import SimpleNamespace

    import _common

    seen = {}

    table = str(tmp_path / "t.csv")

    def task(inputs, outputs, settings: S, ids, log) -> None:
        Path(outputs["table"]).write_text("x\n")
        assert not Path(table).exists()
        outputs = {**outputs, "table": "moved"}
        seen.update(inputs=inputs, outputs=outputs, settings=settings, ids=ids)

    smk = SimpleNamespace(
        input=Named(data="d.h5", runs=["a.h5", "b.h5"], code=["x.py"]),
        output=Named(table=table),
        params=SimpleNamespace(settings={"eps": 0.1}),
        wildcards=Named(dataset="mnist", seed=0),
    )
    _common.call(smk, task, None)
    assert seen == {
        "inputs": {"data": "d.h5", "runs": ["a.h5", "b.h5"]},
        "outputs": {"table": "moved"},
        "settings": S(eps=0.1),
        "ids": {"dataset": "mnist", "seed": "0"},
    }

    assert Path(table).read_text() == "x\n"

    def bare(inputs, outputs, settings: None, ids, log) -> None:
        Path(outputs["table"]).write_text("y\n")
        seen.update(settings=settings)

    _common.call(smk, bare, None)
    assert seen["settings"] is None
