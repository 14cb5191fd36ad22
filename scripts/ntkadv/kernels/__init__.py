"""Stage 2: analytic NTK caches (paper Sec. 3-4; supp. Eqs. 3, 9, 26-29).

Modules: `analytic` (kernel functions of the FC / CONV / two-layer families),
`conv` (the direct CONV NTK / NNGP), `conv_ops` (its elementwise primitives:
arctan2, fusion steering, custom JVPs), `rows` (weighted kernel rows and their
input gradients in one pass), `blocked` (blocked Gram evaluation),
`jacobians` (input-Jacobian caches D(x) = ∂Θ(x, X)/∂x), `task` (the rules
compute_ntk_gram / compute_ntk_input_jacobian).
"""
