"""Stage 6 (paper Sec. 4, supp. App. D): NTK eigenfeatures, robust vs useful.

Modules: `algebra` (feature weights, outputs, gradients from one contraction),
`scoring` (usefulness / robustness, gradient images), `prop1` (Proposition 1),
`topr` (top-r robust kernels), `consistency` (across architectures), `tables`,
`claims` (findings 1, 2, 3, 7, 14), `task` (the jax rules), `summary` (CPU rules).
"""
