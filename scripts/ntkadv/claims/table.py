"""The claims table: one row per checkable finding of experiments.md §3.

Each stage writes ``results/tables/claims/<stage>.csv`` with the columns below;
`merge_claims` joins them into the single table a reader checks the paper against.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

COLUMNS = ["finding", "description", "paper_claim", "measured", "criterion", "status"]
STATUSES = {"pass", "fail", "inconclusive"}


def merge_claims(tables: Iterable[pd.DataFrame], stages: Iterable[str]) -> pd.DataFrame:
    """Concatenate per-stage claims tables, checked and sorted by finding number.

    Args:
        tables: one frame per stage with (at least) the columns of `COLUMNS`.
        stages: the stage names, recorded in a `stage` column.

    Returns:
        Frame with columns `finding, stage, description, ..., status`.

    Raises:
        ValueError: a table misses a column or uses an unknown status.
    """
    frames = []
    for stage, table in zip(stages, tables, strict=True):
        missing = [c for c in COLUMNS if c not in table.columns]
        if missing:
            raise ValueError(f"claims table of stage '{stage}' lacks columns {missing}")
        bad = set(table["status"]) - STATUSES
        if bad:
            raise ValueError(f"claims table of stage '{stage}': unknown status {bad}")
        frames.append(table[COLUMNS].assign(stage=stage))
    merged = pd.concat(frames, ignore_index=True)
    merged = merged.sort_values("finding", kind="stable", key=pd.to_numeric)
    return merged[["finding", "stage", *COLUMNS[1:]]].reset_index(drop=True)


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown rendering (no extra dependency)."""
    cells = [
        [str(v).replace("|", "\\|").replace("\n", " ") for v in row]
        for row in table.itertuples(index=False)
    ]
    head = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "---|" * len(table.columns)
    return "\n".join([head, rule, *("| " + " | ".join(r) + " |" for r in cells)]) + "\n"
