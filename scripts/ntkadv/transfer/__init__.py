"""Stage 5 (paper Sec. 3.2, supp. App. C): NTK attacks transfer to wide two-layer nets.

Modules: `net` (the net of supp. Eq. 28 and its row-space GD), `reference` (the NTK
side f_t at the net's epochs), `experiment` (train one net, compare with f_t),
`records` (output layout), `tables`, `claims` (finding 5: tests against
mismatched-pair and random-sign controls), `checks` (config checks and the GD
stability / divergence checks of every job), `task` (the jax rules), `summary`
(the CPU aggregation and claims rules).
"""
