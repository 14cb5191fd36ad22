"""One definition of each type alias (issue 21): every name that ntkadv.typing
defines (aliases, protocols) is defined there only; other modules import it. An AST
scan of the package, so a module that re-defines `KernelFn` or `Get` fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "scripts" / "ntkadv"
TYPING = PACKAGE / "typing.py"


def defined_names(path: Path) -> dict[str, int]:
    """Module-level names `path` defines (assignments, annotated assignments,
    classes, functions) -> line; imports do not count."""
    names: dict[str, int] = {}
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        if isinstance(node, ast.Assign):
            targets = [t for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target] if isinstance(node.target, ast.Name) else []
        elif isinstance(node, ast.ClassDef | ast.FunctionDef):
            names[node.name] = node.lineno
            continue
        else:
            continue
        for target in targets:
            names[target.id] = node.lineno
    return names


SHARED = defined_names(TYPING)
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p != TYPING)


def test_the_scan_sees_the_aliases():
    assert {"KernelFn", "ApplyFn", "EntkFn", "Get", "Task", "Contractible"} <= set(
        SHARED
    )


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_redefines_a_shared_type(path: Path):
    again = {name: line for name, line in defined_names(path).items() if name in SHARED}
    where = ", ".join(f"{name} (line {line})" for name, line in again.items())
    assert not again, f"{path.relative_to(PACKAGE)} re-defines {where}: import it "
    "from ntkadv.typing"


def test_a_redefinition_is_found(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "from ntkadv.typing import Task\nKernelFn = object\nclass Get: ...\n"
    )
    assert set(defined_names(module)) & set(SHARED) == {"KernelFn", "Get"}
