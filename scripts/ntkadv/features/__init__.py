"""Stage 6 (paper Sec. 4, supp. App. D): NTK eigenfeatures, robust vs useful.

Modules: `algebra` (feature weights, outputs, gradients; the ± trick's FGSM sides),
`projections` (jax: p_i = Θ(x, X) v_i at perturbed points, jitted once),
`scoring` (label-free projections, null space, gradient images), `rescore` (scores
of any training labels from the projections, NumPy only), `prop1` (Proposition 1),
`topr` (top-r robust kernels), `consistency` (across architectures), `tables`,
`stats` (correctness, finding statistics, pooling over label permutations), `claims`
(findings 1, 2, 3, 7 and 14 against label-permutation nulls), `checks`,
`task` (the jax rules), `summary` (CPU rules).
"""
