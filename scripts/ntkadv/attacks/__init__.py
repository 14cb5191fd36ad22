"""Stage 4 (paper Sec. 3, supp. App. B): training-free ℓ∞ attacks on the NTK predictor.

Modules: `closed_form` (FGSM and first-order directions), `pgd`, `suite` (every attack
of one kernel machine at every planned (t, ε)), `task` (rule attack_ntk), `tables`
(aggregation, notebook reference), `summary` (the CPU table and claims rules),
`pointwise` (per-point correctness, finding 4's cross-fitted early time), `claims`
(findings 4, 6, 15).
"""
