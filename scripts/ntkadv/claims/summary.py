"""Rule aggregate_claims: the per-stage claims rows joined into one table (pandas).

The task has the entry signature of every rule (scripts/_common.call):
``(inputs, outputs, settings, ids, log)``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ntkadv.claims.table import merge_claims, to_html, to_markdown


def aggregate_claims(
    inputs: dict[str, list[str]],
    outputs: dict[str, str],
    settings: None,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Join results/tables/claims/<stage>.csv of every included stage (the stage is
    the file's stem); write the table as CSV, Markdown and HTML.

    Args:
        inputs: ``tables``: the per-stage claims tables.
        outputs: ``csv``, ``md`` and ``html``: the claims table.
        settings: None (the rule consumes no params); ids: none; log: the job's logger.
    """
    stages = [Path(p).stem for p in inputs["tables"]]
    table = merge_claims([pd.read_csv(p) for p in inputs["tables"]], stages)
    table.to_csv(outputs["csv"], index=False)
    Path(outputs["md"]).write_text(to_markdown(table))
    Path(outputs["html"]).write_text(to_html(table), encoding="utf-8")
    log.info(
        "%d claims rows: %s", len(table), table["verdict"].value_counts().to_dict()
    )
