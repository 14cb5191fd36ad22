"""The claims table: one row per checkable finding of docs/findings.md.

Modules: `core` (Evidence, the verdict rule, row builders, bootstrap / seed
standard errors), `table` (merging the per-stage tables, markdown rendering),
`summary` (rule aggregate_claims).
"""
