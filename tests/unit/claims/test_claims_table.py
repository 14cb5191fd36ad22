"""Tests of ntkadv.claims.table: merging per-stage claims tables, markdown."""

from __future__ import annotations

import pandas as pd
import pytest

from ntkadv.claims.core import COLUMNS, Evidence, claim_row
from ntkadv.claims.table import merge_claims, to_markdown


def row(finding, verdict="pass", dataset="mnist"):
    ev = Evidence("s | x", 0.5, 0.1, 0.4 if verdict == "pass" else -0.4, 0.1, "boot")
    out = claim_row(finding, dataset, "claim", ev, "c", "results/figures/f.png")
    assert out["verdict"] == verdict
    return out


def test_merge_sorts_numerically_and_tags_stage():
    a = pd.DataFrame([row(10), row(2)])
    b = pd.DataFrame([row(9, "fail")])
    merged = merge_claims([a, b], ["attacks", "features"])
    assert merged["finding"].tolist() == [2, 9, 10]
    assert merged["stage"].tolist() == ["attacks", "features", "attacks"]
    assert list(merged.columns) == ["finding", "stage", *COLUMNS[1:]]
    md = to_markdown(merged)
    assert "s \\| x" in md  # pipes escaped
    assert "[f.png](../figures/f.png)" in md
    assert "0.4 ± 0.1" in md and "**fail**" in md
    assert md.count("\n1. (finding 2") == 1


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (pd.DataFrame([{**row(1), "verdict": "maybe"}]), "unknown verdict"),
        (pd.DataFrame([row(1)]).drop(columns="effect_se"), "effect_se"),
    ],
)
def test_merge_rejects_malformed_tables(table, message):
    with pytest.raises(ValueError, match=message):
        merge_claims([table], ["x"])


def test_html_has_one_escaped_row_per_claim_with_its_verdict():
    from html.parser import HTMLParser

    from ntkadv.claims.table import to_html

    merged = merge_claims(
        [pd.DataFrame([row(2), row(9, "fail")]), pd.DataFrame([row(4)])],
        ["attacks", "features"],
    )
    merged.loc[0, "claim"] = "<b>robust & early</b>"
    page = to_html(merged)

    class Rows(HTMLParser):
        def __init__(self):
            super().__init__()
            self.verdicts = []

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "tr" and "data-verdict" in attrs:
                self.verdicts.append(attrs["data-verdict"])

    parser = Rows()
    parser.feed(page)
    assert parser.verdicts == merged["verdict"].tolist() == ["pass", "pass", "fail"]
    assert "&lt;b&gt;robust &amp; early&lt;/b&gt;" in page  # cells are escaped
    assert "verdicts: pass 2, fail 1, inconclusive 0" in page
    assert "0.4 ± 0.1" in page and "-0.4 ± 0.1" in page
    assert "<code>f.png</code>" in page
