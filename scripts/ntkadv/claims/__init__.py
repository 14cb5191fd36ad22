"""The claims table: one row per checkable finding of experiments.md §3.

Modules: `core` (Evidence, the verdict rule, row builders, bootstrap / seed
standard errors), `table` (merging the per-stage tables, markdown rendering).
"""
