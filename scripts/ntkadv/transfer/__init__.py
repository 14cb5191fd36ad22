"""Stage 5 (paper Sec. 3.2, supp. App. C): NTK attacks transfer to wide two-layer nets.

Modules: `net` (the net of supp. Eq. 28 and its row-space GD), `reference` (the NTK
side f_t at the net's epochs), `experiment` (train one net, compare with f_t),
`records` (output layout), `tables`, `claims` (finding 5), `task` (the jax rules),
`summary` (the CPU aggregation rule).
"""
