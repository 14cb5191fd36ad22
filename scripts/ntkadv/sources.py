"""The source files a rule script runs: the code its outputs depend on.

Snakemake reruns a job when its rule or its script changes, but not when library code
the script imports changes, so an edit to ``ntkadv/kernels/conv.py`` would leave every
CONV result stale. The workflow adds `local_sources` of each rule's script to the
rule's input (``input.code``): editing a module reruns exactly the jobs whose
scripts import it, directly or through other modules, and nothing else.

Imports are read statically (``ast``), including those inside functions, so finding
them imports nothing. A name of the package's lazy API (``from ntkadv import pgd``)
counts as its defining module. Dynamic imports (``importlib.import_module`` with a
computed name) are not seen; the library uses one, for the per-stage config checks,
which run when the workflow is parsed rather than in a job.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from functools import cache
from pathlib import Path

#: The package whose lazy top-level API names are resolved to their modules.
PACKAGE = "ntkadv"


def module_file(root: Path, dotted: str) -> Path | None:
    """The file of module `dotted` under `root` (package ``__init__`` or ``.py``)."""
    base = root.joinpath(*dotted.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


@cache
def lazy_api(root: Path) -> dict[str, str]:
    """The package's ``_API`` mapping (name -> defining module), read without import."""
    init = module_file(root, PACKAGE)
    if init is None:
        return {}
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.AnnAssign | ast.Assign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "_API" for t in targets):
                return dict(ast.literal_eval(node.value))
    return {}


def imported_modules(path: Path, api: Mapping[str, str]) -> set[str]:
    """Dotted names a file imports anywhere in it (absolute imports only).

    For ``from a.b import c`` both ``a.b`` and ``a.b.c`` are returned (``c`` may be a
    submodule); every parent package (``a``) is included, since importing a module
    runs its packages' ``__init__``.
    """
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            for alias in node.names:
                names.add(f"{node.module}.{alias.name}")
                if node.module == PACKAGE and alias.name in api:
                    names.add(api[alias.name])
    parents = {
        ".".join(n.split(".")[:i]) for n in names for i in range(1, n.count(".") + 1)
    }
    return names | parents


def local_sources(script: Path, root: Path | None = None) -> list[Path]:
    """The script and every module under `root` it imports, transitively, sorted.

    Args:
        script: a rule script (``scripts/attack_ntk.py``).
        root: the import root the script runs with (default: the script's folder,
            which is where ``_common`` and ``ntkadv`` live).

    Returns:
        Absolute paths: the script itself, then each local module file it reaches.
    """
    script = Path(script).resolve()
    root = Path(root).resolve() if root is not None else script.parent
    seen, todo = {script}, [script]
    while todo:
        for dotted in _imports_under(todo.pop(), root):
            found = module_file(root, dotted)  # under the resolved root
            if found is not None and found not in seen:
                seen.add(found)
                todo.append(found)
    return sorted(seen)


@cache
def _imports_under(path: Path, root: Path) -> frozenset[str]:
    """`imported_modules` of a file, parsed once per process (the workflow asks for
    every rule's script, and most of them share most modules)."""
    return frozenset(imported_modules(path, lazy_api(root)))
