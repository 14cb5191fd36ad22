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


def test_lazy_names_of_a_subpackage_face_count_as_their_module_only(tmp_path):
    """``ntkadv.data`` loads its names lazily (``_API``): a job that uses one name
    depends on that name's module, imported or reached as an attribute, and not on
    the face's other modules (download code)."""
    files = {
        "_common.py": "",
        "ntkadv/__init__.py": '_API = {"pgd": "ntkadv.attacks.pgd"}\n',
        "ntkadv/attacks/__init__.py": "",
        "ntkadv/attacks/pgd.py": "",
        "ntkadv/data/__init__.py": (
            "_API = {\n"
            '    "prepare": "ntkadv.data.subsets",\n'
            '    "download_raw": "ntkadv.data.download",\n'
            "}\n"
        ),
        "ntkadv/data/subsets.py": "from ntkadv.data.raw import read\n",
        "ntkadv/data/raw.py": "",
        "ntkadv/data/download.py": "from ntkadv.data.raw import read\n",
    }
    _tree(tmp_path, files)
    jobs = {
        "from_face": "from ntkadv.data import prepare\n",
        "attribute": "from ntkadv import data\ndef main():\n    data.prepare()\n",
        "dotted": "import ntkadv.data\nntkadv.data.prepare()\n",
        "alias": "import ntkadv.data as d\nx = d.prepare\n",
        "submodule": "from ntkadv import data\ndata.raw.read()\n",
        "top_level": "import ntkadv\nntkadv.pgd()\n",
        "download": "from ntkadv.data import download_raw\n",
    }
    found = {}
    for name, text in jobs.items():
        (tmp_path / f"{name}.py").write_text(text)
        paths = local_sources(tmp_path / f"{name}.py")
        found[name] = {p.relative_to(tmp_path).as_posix() for p in paths}
        found[name] -= {f"{name}.py", "ntkadv/__init__.py", "ntkadv/data/__init__.py"}
    prepare = {"ntkadv/data/subsets.py", "ntkadv/data/raw.py"}
    for name in ("from_face", "attribute", "dotted", "alias"):
        assert found[name] == prepare, name
    assert found["submodule"] == {"ntkadv/data/raw.py"}
    assert found["top_level"] == {"ntkadv/attacks/__init__.py", "ntkadv/attacks/pgd.py"}
    assert found["download"] == {"ntkadv/data/download.py", "ntkadv/data/raw.py"}


@pytest.mark.parametrize(
    "code",
    [
        "import ntkadv.attacks.task",
        "import ntkadv.dynamics.claims",
        "import ntkadv.kernels.task",
        "import ntkadv.plotting.attacks",  # the registry: ntkadv.data.sources
        "from ntkadv import data\ndata.load_prepared",  # a lazy name as attribute
        "import ntkadv.data\nntkadv.data.sources.SOURCES",  # a lazy submodule
    ],
)
def test_every_module_python_loads_is_found(code, tmp_path):
    """Independent check: the local files Python actually loads when the code runs
    (sys.modules, lazy names included) are a subset of the static answer."""
    script = tmp_path / "job.py"
    script.write_text(f"{code}\n")
    code = (
        f"import sys; sys.path.insert(0, {str(SCRIPTS)!r})\n{code}\n"
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
