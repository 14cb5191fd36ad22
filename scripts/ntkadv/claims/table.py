"""The claims table: every stage's rows joined, checked and rendered.

Each stage writes ``results/tables/claims/<stage>.csv`` with the columns of
`ntkadv.claims.core.COLUMNS`; `merge_claims` joins them (sorted by finding) into
the single table a reader checks the paper against, `to_markdown` renders it with
measured vs null ± SE and a link to the figure of each row, and `to_html` renders it
as an HTML table (verdict-coloured rows, the details of each row folded under its
claim) for the Snakemake report.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from ntkadv.claims.core import COLUMNS, VERDICTS


def merge_claims(tables: Iterable[pd.DataFrame], stages: Iterable[str]) -> pd.DataFrame:
    """Concatenate per-stage claims tables, checked and sorted by finding number.

    Args:
        tables: one frame per stage with (at least) the columns of `COLUMNS`.
        stages: the stage names, recorded in a `stage` column.

    Returns:
        Frame with columns `finding, stage, dataset, ...` (COLUMNS order).

    Raises:
        ValueError: a table misses a column or uses an unknown verdict.
    """
    frames = []
    for stage, table in zip(stages, tables, strict=True):
        missing = [c for c in COLUMNS if c not in table.columns]
        if missing:
            raise ValueError(f"claims table of stage '{stage}' lacks columns {missing}")
        bad = set(table["verdict"]) - set(VERDICTS)
        if bad:
            raise ValueError(f"claims table of stage '{stage}': unknown verdict {bad}")
        frames.append(table[COLUMNS].assign(stage=stage))
    merged = pd.concat(frames, ignore_index=True)
    merged = merged.sort_values(["finding", "dataset"], kind="stable")
    return merged[["finding", "stage", *COLUMNS[1:]]].reset_index(drop=True)


#: The verdict rule as applied (`ntkadv.claims.core`), the head of claims.md.
RULE = [
    "Each row compares a statistic with the same statistic on a null control "
    "computed in the same run; effect is signed so that positive supports the "
    "paper. Verdict: pass if effect >= c SE (and any stated minimum effect), fail "
    "if effect <= -c SE, otherwise inconclusive (the note gives the size that would "
    "resolve it), at the one-sided level Φ(−2) ≈ 2.3 % throughout:",
    "",
    '- c = 2 ("2 SE") when the SE is a large-sample bootstrap over evaluation points;',
    "- c = the Student-t critical value at the SE's degrees of freedom when the SE "
    "contains a spread over k replicates (label permutations, seeds, nets): k − 1 "
    "for a std over k, Welch–Satterthwaite for a difference of seed means, "
    "Satterthwaite for SE² = SE_boot² + spread² (13.9 at df 1, 4.5 at df 2, 2.9 at "
    "df 4); the note of such a row gives c and the df. The Satterthwaite df is a "
    "plug-in: with 2 replicates and a bootstrap part of similar size a false claim "
    "passes in ~4-7 % of runs (12 % at 2 SE), not 2.3 %;",
    '- an equivalence claim ("insignificant", "within a margin") passes only '
    "if its upper confidence bound value + c SE is below the margin and fails if "
    "the lower bound value − c SE is above it;",
    "- a row pooling several kernels, architectures or pairs fails if any member "
    "fails at its own SE, whatever the pooled effect, at the family-wise critical "
    "value of its M member tests (Bonferroni: one-sided level Φ(−2)/M, 3.1 SE for "
    "24, 3.35 for 56); the note lists every member. "
    "Where the paper's claim concerns one kernel, the claim text says which row is "
    "the paper's and which this project's extension;",
    "- a claim with several parts passes if every part passes and fails if any "
    "fails. Findings 14 and 15 are numerical identities (error below a tolerance).",
]


def _num(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return f"{x:.3g}"


def _cell(value: object) -> str:
    text = (
        ""
        if value is None or (isinstance(value, float) and np.isnan(value))
        else str(value)
    )
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(table: pd.DataFrame, figures_prefix: str = "../figures/") -> str:
    """Markdown of the claims table: one row per claim, then the notes by row.

    Each row shows measured vs null, effect ± SE (effect signed so that positive
    supports the paper; pass needs effect >= c·SE, c from `RULE`), the verdict and
    the figure.
    """
    counts = table["verdict"].value_counts().to_dict()
    lines = [
        "# Claims of Tsilivis & Kempe (2022) tested in this run",
        "",
        *RULE,
        "",
        "Verdicts: " + ", ".join(f"{v} {counts.get(v, 0)}" for v in VERDICTS),
        "",
        "| # | finding | dataset | claim | statistic | measured | null | "
        "effect ± SE | verdict | figure |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for i, row in enumerate(table.itertuples(index=False), 1):
        fig = str(row.figure) if isinstance(row.figure, str) else ""
        name = fig.rsplit("/", 1)[-1]
        link = f"[{name}]({figures_prefix}{name})" if name else ""
        effect = (
            f"{_num(row.effect)} ± {_num(row.effect_se)}"
            if not (isinstance(row.effect, float) and math.isnan(row.effect))
            else ""
        )
        cells = [
            str(i),
            str(row.finding),
            _cell(row.dataset),
            _cell(row.claim),
            _cell(row.statistic),
            _num(row.measured),
            _num(row.null),
            effect,
            f"**{row.verdict}**",
            link,
        ]
        lines.append("| " + " | ".join(cells) + " |")
        notes.append(
            f"{i}. (finding {row.finding}, {_cell(row.dataset)}) criterion: "
            f"{_cell(row.criterion)}. {_cell(row.note)}"
        )
    return "\n".join([*lines, "", "## Notes", "", *notes]) + "\n"


#: Inline CSS of `to_html`, scoped to the ``ntkadv-claims`` class so that the
#: table can also be embedded in the report's landing page.
_HTML_STYLE = """
.ntkadv-claims { font: 13px/1.4 system-ui, sans-serif; color: #1a1a1a; }
.ntkadv-claims table { border-collapse: collapse; width: 100%; margin: 0; }
.ntkadv-claims th, .ntkadv-claims td { border-bottom: 1px solid #d0d0d0;
  padding: 3px 6px; text-align: left; vertical-align: top; }
.ntkadv-claims th { background: #eeeeee; }
.ntkadv-claims td.num { text-align: right; white-space: nowrap; }
.ntkadv-claims td.verdict { font-weight: 600; white-space: nowrap; }
.ntkadv-claims tr.pass td.verdict { background: #d6f0d6; color: #14551a; }
.ntkadv-claims tr.fail td.verdict { background: #f6d3d3; color: #8b1a1a; }
.ntkadv-claims tr.inconclusive td.verdict { background: #f1ead0; color: #5f5010; }
.ntkadv-claims details { color: #444444; font-size: 12px; }
.ntkadv-claims summary { cursor: pointer; color: #1f4e99; }
""".strip()


def _esc(value: object) -> str:
    return html.escape(_cell(value))


def to_html(table: pd.DataFrame, title: str = "Claims tested in this run") -> str:
    """A standalone HTML page of the claims table (one ``<tr>`` per row).

    Columns: row number, finding, dataset, claim, effect ± SE and verdict; the row's
    statistic, measured and null values, criterion, note and figure are folded in a
    ``<details>`` element under the claim. Each row has ``class`` and
    ``data-verdict`` set to its verdict (coloured by the inline CSS, scoped to the
    ``ntkadv-claims`` class so the page can be embedded in another one).

    Args:
        table: the merged claims table (`merge_claims`).
        title: page title and heading.

    Returns:
        The HTML document (UTF-8 text); every cell is HTML-escaped.
    """
    counts = table["verdict"].value_counts().to_dict()
    summary = ", ".join(f"{v} {counts.get(v, 0)}" for v in VERDICTS)
    rows = []
    for i, row in enumerate(table.itertuples(index=False), 1):
        verdict = html.escape(str(row.verdict))
        effect = (
            f"{_num(row.effect)} ± {_num(row.effect_se)}"
            if not (isinstance(row.effect, float) and math.isnan(row.effect))
            else ""
        )
        figure = (
            str(row.figure).rsplit("/", 1)[-1] if isinstance(row.figure, str) else ""
        )
        details = (
            f"<b>statistic</b>: {_esc(row.statistic)}; <b>measured</b> "
            f"{_num(row.measured)}, <b>null</b> {_num(row.null)}<br>"
            f"<b>criterion</b>: {_esc(row.criterion)}<br>"
            f"<b>note</b>: {_esc(row.note)}"
            + (
                f"<br><b>figure</b>: <code>{html.escape(figure)}</code>"
                if figure
                else ""
            )
        )
        rows.append(
            f'<tr class="{verdict}" data-verdict="{verdict}">'
            f'<td class="num">{i}</td><td class="num">{_esc(row.finding)}</td>'
            f"<td>{_esc(row.dataset)}</td>"
            f"<td>{_esc(row.claim)}<details><summary>details</summary>{details}"
            f"</details></td>"
            f'<td class="num">{html.escape(effect)}</td>'
            f'<td class="verdict">{verdict}</td></tr>'
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in ("#", "finding", "dataset", "claim", "effect ± SE", "verdict")
    )
    body = "\n".join(rows)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_HTML_STYLE}</style></head>\n"
        f'<body><div class="ntkadv-claims">\n<p><b>{html.escape(title)}</b>: '
        f"{len(table)} rows; verdicts: {summary}. Effect is signed so that positive "
        "supports the paper; pass needs effect ≥ c·SE (c = 2 for a bootstrap SE, "
        "the Student-t quantile given in the note for a seed-spread SE).</p>\n"
        f'<table id="claims-table"><thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n'
        "</tbody></table></div></body></html>\n"
    )
