"""Stage 3: the spectrum of the NTK Gram matrix and the predictor f_t it defines.

Modules: `eigh` (Θ(X, X) = V diag(λ) Vᵀ, clipped), `predictor` (f_t of supp. Eq. 3
as a spectral filter, its input gradient, Eq. 9), `task` (rule eigendecompose_gram).
"""
