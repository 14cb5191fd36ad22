"""Rule aggregate_claims' task (ntkadv.claims.summary) on two tiny stage tables."""

from __future__ import annotations

import logging

import pandas as pd

from ntkadv.claims.core import Evidence, claim_row
from ntkadv.claims.summary import aggregate_claims


def test_aggregate_claims_tags_stages_by_file_stem(tmp_path):
    ev = Evidence("s", 0.5, 0.1, 0.4, 0.1, "boot")
    tables = []
    for stage, finding in [("attacks", 4), ("transfer", 5)]:
        path = tmp_path / f"{stage}.csv"
        row = claim_row(finding, "mnist", "claim", ev, "c", "results/figures/f.png")
        pd.DataFrame([row]).to_csv(path, index=False)
        tables.append(str(path))
    outputs = {k: str(tmp_path / f"claims.{k}") for k in ("csv", "md", "html")}
    aggregate_claims({"tables": tables}, outputs, None, {}, logging.getLogger())
    table = pd.read_csv(outputs["csv"])
    assert table["stage"].tolist() == ["attacks", "transfer"]
    assert "(finding 5" in (tmp_path / "claims.md").read_text()
    assert "<table" in (tmp_path / "claims.html").read_text(encoding="utf-8")
