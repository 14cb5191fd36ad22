"""All-or-nothing outputs for files their writer cannot make atomic itself.

HDF5 outputs are written to a temporary and renamed by `ntkadv.h5io.atomic_h5`.
Tables, Markdown / HTML pages and figures are written by pandas, matplotlib or
``Path.write_text`` straight to the path they are given, so a job killed mid-write
(or failing after writing one of its several outputs) would leave a partial or
orphaned file that a rerun trusts by its date. `atomic_outputs` hands the task, for
each such output, a path inside a fresh hidden temporary folder next to it
(``.<name>.<random>.tmp/<name>``: same file name and suffix, so writers that infer
the format from the suffix work), moves every file into place only after the task
returned, and removes the folders when it raised or was stopped (the folders are
registered with `ntkadv.interrupts`, whose watchdog deletes them on SIGINT / SIGTERM).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ntkadv import interrupts

#: Suffixes of outputs written by writers that are not atomic themselves.
REDIRECTED = frozenset({".csv", ".md", ".html", ".png", ".pdf", ".svg", ".tsv"})


def _redirect(path: str, stack: contextlib.ExitStack, moves: list) -> str:
    final = Path(path)
    if final.suffix not in REDIRECTED:
        return path
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".{final.name}.*.tmp"):  # left by a killed job
        shutil.rmtree(stale, ignore_errors=True)
    folder = tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    stack.enter_context(interrupts.temporary(folder))
    stack.callback(shutil.rmtree, folder, True)
    temp = os.path.join(folder, final.name)
    moves.append((temp, final))
    return temp


@contextlib.contextmanager
def atomic_outputs(outputs: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Temporary paths for the non-HDF5 files of `outputs`, moved into place at exit.

    Args:
        outputs: {name: path or list of paths} of a job's outputs.

    Yields:
        The same mapping with every path whose suffix is in `REDIRECTED` replaced
        by a temporary path (HDF5 files and folders are passed through). When the
        block ends normally each temporary file is renamed onto its output path; a
        temporary the task did not write is left out (Snakemake then names the
        missing output). On an exception nothing is moved.
    """
    moves: list[tuple[str, Path]] = []
    with contextlib.ExitStack() as stack:
        redirected = {
            name: (
                _redirect(value, stack, moves)
                if isinstance(value, str)
                else [_redirect(v, stack, moves) for v in value]
            )
            for name, value in outputs.items()
        }
        yield redirected
        for temp, final in moves:
            if os.path.exists(temp):
                os.replace(temp, final)
