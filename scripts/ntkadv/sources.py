"""The source files a rule script runs: the code its outputs depend on.

Snakemake reruns a job when its rule or its script changes, but not when library code
the script imports changes, so an edit to ``ntkadv/kernels/conv.py`` would leave every
CONV result stale. The workflow adds `local_sources` of each rule's script to the
rule's input (``input.code``): editing a module reruns exactly the jobs whose
scripts import it, directly or through other modules, and nothing else.

Imports are read statically (``ast``), including those inside functions, so finding
them imports nothing. A package face may load its names lazily (PEP 562
``__getattr__``; ``ntkadv`` and ``ntkadv.data`` do, and so does the module
``ntkadv.data.task`` for its download task): its ``_API`` mapping (name -> defining
module) is read, so a lazy name counts as its defining module only, both
imported (``from ntkadv.data import load_prepared``) and as an attribute of an
imported module (``from ntkadv import data`` ... ``data.load_prepared``): a job
using `load_prepared` depends on ``ntkadv/data/subsets.py``, not on the download
code that the same face also offers. Attributes are matched by name over the whole
file (not by scope), which can only add a module, never miss one. Dynamic imports
(``importlib.import_module`` with a computed name) are not seen; the library uses
them only in the package faces (resolved through ``_API``) and for the per-stage
config checks (``ntkadv.configcheck``), which run when the workflow is parsed rather
than in a job.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path


def module_file(root: Path, dotted: str) -> Path | None:
    """The file of module `dotted` under `root` (package ``__init__`` or ``.py``)."""
    base = root.joinpath(*dotted.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


@cache
def package_api(root: Path, package: str) -> dict[str, str]:
    """The ``_API`` mapping (lazy name -> defining module) of package (or module)
    `package` under `root`, read without import; empty if it is no local module or
    has none."""
    init = module_file(root, package)
    if init is None:
        return {}
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.AnnAssign | ast.Assign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "_API" for t in targets):
                return dict(ast.literal_eval(node.value))
    return {}


def imported_modules(
    path: Path, api_of: Callable[[str], Mapping[str, str]] = lambda _: {}
) -> set[str]:
    """Dotted names a file imports anywhere in it (absolute imports only).

    For ``from a.b import c`` both ``a.b`` and ``a.b.c`` are returned (``c`` may be a
    submodule); every parent package (``a``) is included, since importing a module
    runs its packages' ``__init__``. A name ``c`` in ``api_of("a.b")`` (the lazy
    names of package ``a.b``) adds its defining module; so does an attribute
    ``x.c`` of a name ``x`` that an import bound to ``a.b``.

    Args:
        path: a Python file.
        api_of: dotted package -> its lazy names (`package_api`).
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    bound: dict[str, str] = {}  # local name -> the dotted name an import gave it

    def lazy(owner: str, name: str) -> None:
        names.add(f"{owner}.{name}")
        defining = api_of(owner).get(name)
        if defining is not None:
            names.add(defining)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names.add(alias.name)
                local = alias.asname or alias.name.partition(".")[0]
                bound[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            for alias in node.names:
                lazy(node.module, alias.name)
                bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    def dotted(expr: ast.expr) -> str | None:
        if isinstance(expr, ast.Name):
            return bound.get(expr.id)
        if isinstance(expr, ast.Attribute):
            base = dotted(expr.value)
            return base and f"{base}.{expr.attr}"
        return None

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            owner = dotted(node.value)
            if owner is not None:
                lazy(owner, node.attr)
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
    return frozenset(imported_modules(path, lambda package: package_api(root, package)))
