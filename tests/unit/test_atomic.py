"""ntkadv.atomic: tables, pages and figures appear whole or not at all."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from ntkadv import interrupts  # noqa: E402
from ntkadv.atomic import atomic_outputs  # noqa: E402


def _leftovers(root: Path) -> list[Path]:
    return sorted(root.rglob(".*.tmp"))


def test_outputs_appear_only_when_the_task_returns(tmp_path):
    outs = {
        "csv": str(tmp_path / "t/table.csv"),
        "figs": [str(tmp_path / "f/a.png"), str(tmp_path / "f/b.pdf")],
        "h5": str(tmp_path / "x.h5"),
    }
    with atomic_outputs(outs) as temps:
        assert temps["h5"] == outs["h5"]  # h5io writes HDF5 atomically itself
        for final, temp in [
            (outs["csv"], temps["csv"]),
            *zip(outs["figs"], temps["figs"], strict=True),
        ]:
            assert temp != final and Path(temp).name == Path(final).name
            assert not Path(final).exists()
        pd.DataFrame({"a": [1, 2]}).to_csv(temps["csv"], index=False)
        fig = plt.figure()
        for path in temps["figs"]:  # matplotlib infers the format from the suffix
            fig.savefig(path)
        plt.close(fig)
        assert not Path(outs["csv"]).exists()
    assert pd.read_csv(outs["csv"])["a"].tolist() == [1, 2]
    assert Path(outs["figs"][0]).read_bytes()[:4] == b"\x89PNG"
    assert Path(outs["figs"][1]).read_bytes()[:4] == b"%PDF"
    assert _leftovers(tmp_path) == []


def test_a_failing_task_leaves_the_old_outputs_and_no_temporary(tmp_path):
    """The task writes one of its two tables, then fails: neither output changes."""
    first, second = tmp_path / "one.csv", tmp_path / "two.csv"
    first.write_text("old\n")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_outputs({"a": str(first), "b": str(second)}) as temps:
            Path(temps["a"]).write_text("new\n")
            raise RuntimeError("boom")
    assert first.read_text() == "old\n" and not second.exists()
    assert _leftovers(tmp_path) == []


def test_a_stop_signal_removes_the_temporary_folders(tmp_path):
    """What the interrupt watchdog deletes on SIGINT includes the open folders."""
    with atomic_outputs({"csv": str(tmp_path / "t.csv")}) as temps:
        Path(temps["csv"]).write_text("partial")
        removed = interrupts.remove_temporaries()
        assert [Path(p).name for p in removed] == [Path(temps["csv"]).parent.name]
        assert _leftovers(tmp_path) == []
        Path(temps["csv"]).parent.mkdir()  # (so the block can end normally)
    assert not (tmp_path / "t.csv").exists()  # the task's file is gone with it


def test_a_killed_jobs_temporary_folder_is_cleared_by_the_rerun(tmp_path):
    stale = tmp_path / ".t.csv.abc123.tmp"
    stale.mkdir()
    (stale / "t.csv").write_text("partial")
    with atomic_outputs({"csv": str(tmp_path / "t.csv")}) as temps:
        Path(temps["csv"]).write_text("whole")
    assert (tmp_path / "t.csv").read_text() == "whole"
    assert _leftovers(tmp_path) == []
