"""Tests of ntkadv.claims.table: merging per-stage claims tables."""

from __future__ import annotations

import pandas as pd
import pytest

from ntkadv.claims.table import COLUMNS, merge_claims, to_markdown


def row(finding, status="pass"):
    return dict(zip(COLUMNS, [finding, "d", "p", "m | x", "c", status], strict=True))


def test_merge_sorts_numerically_and_tags_stage():
    a = pd.DataFrame([row(10), row(2)])
    b = pd.DataFrame([row(9, "fail")])
    merged = merge_claims([a, b], ["attacks", "features"])
    assert merged["finding"].tolist() == [2, 9, 10]
    assert merged["stage"].tolist() == ["attacks", "features", "attacks"]
    md = to_markdown(merged)
    assert md.count("\n") == 2 + len(merged)
    assert "m \\| x" in md  # pipes escaped


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (pd.DataFrame([row(1, "maybe")]), "unknown status"),
        (pd.DataFrame([row(1)]).drop(columns="measured"), "measured"),
    ],
)
def test_merge_rejects_malformed_tables(table, message):
    with pytest.raises(ValueError, match=message):
        merge_claims([table], ["x"])
