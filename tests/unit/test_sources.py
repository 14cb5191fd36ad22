"""ntkadv.sources: the local files a rule script runs, found statically."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ntkadv.sources import local_sources

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_static_imports_are_followed_transitively_and_nothing_else(tmp_path):
    _tree(
        tmp_path,
        {
            "_common.py": "import os\n",
            "ntkadv/__init__.py": '_API = {"pgd": "ntkadv.attacks.pgd"}\n',
            "ntkadv/attacks/__init__.py": "",
            "ntkadv/attacks/pgd.py": "from ntkadv.losses import mse\n",
            "ntkadv/losses.py": "import numpy\nimport ntkadv.losses\n",  # a cycle
            "ntkadv/kernels/__init__.py": "",
            "ntkadv/kernels/conv.py": "",
            "ntkadv/kernels/fc.py": "",  # imported by nobody
            "ntkadv/h5io.py": "",
            "job.py": (
                "import _common\n"
                "def main():\n"
                "    from ntkadv import pgd, h5io\n"  # lazy API name, submodule
                "    from ntkadv.kernels import conv\n"
            ),
        },
    )
    found = {
        p.relative_to(tmp_path).as_posix() for p in local_sources(tmp_path / "job.py")
    }
    assert found == {
        "job.py",
        "_common.py",
        "ntkadv/__init__.py",
        "ntkadv/attacks/__init__.py",
        "ntkadv/attacks/pgd.py",
        "ntkadv/losses.py",
        "ntkadv/kernels/__init__.py",
        "ntkadv/kernels/conv.py",
        "ntkadv/h5io.py",
    }


@pytest.mark.parametrize(
    "module", ["ntkadv.attacks.task", "ntkadv.dynamics.claims", "ntkadv.kernels.task"]
)
def test_every_module_python_loads_is_found(module, tmp_path):
    """Independent check: the local files Python actually loads when the module is
    imported (sys.modules) are a subset of the static answer."""
    script = tmp_path / "job.py"
    script.write_text(f"import {module}\n")
    code = (
        f"import sys; sys.path.insert(0, {str(SCRIPTS)!r}); import {module}\n"
        "for m in list(sys.modules.values()):\n"
        "    f = getattr(m, '__file__', None) or ''\n"
        f"    if f.startswith({str(SCRIPTS)!r}): print(f)\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded
    static = {str(p) for p in local_sources(script, root=SCRIPTS)}
    assert {str(Path(f).resolve()) for f in loaded} <= static
