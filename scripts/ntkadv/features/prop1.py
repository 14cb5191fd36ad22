"""Proposition 1 of supp. App. D.1: the loss gradient of f_∞ decomposes over features.

∇ₓL(f_∞) = Σ_i α_i ∇ₓL(f⁽ⁱ⁾), α_i = (σ(f_∞) − ŷ)/(σ(f⁽ⁱ⁾) − ŷ) (binary task), and
Σ_i f⁽ⁱ⁾ = f_∞ (Eq. 31); checked on real data against a linear solve (finding 14).
"""

from __future__ import annotations

import numpy as np

from ntkadv.features.algebra import feature_outputs, feature_weights
from ntkadv.losses import loss_output_gradient
from ntkadv.typing import ContractFn


def proposition1_decomposition(
    f_full: np.ndarray, f_feat: np.ndarray, loss_grads_feat: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Σ_i α_i ∇ₓL(f⁽ⁱ⁾), α_i = (σ(f_∞) − ŷ)/(σ(f⁽ⁱ⁾) − ŷ) (supp. Prop. 1, Eq. 32-33).

    Binary task only (α is a scalar ratio of sigmoid residuals).

    Args:
        f_full: (m, 1) f_∞ at the points.
        f_feat: (N, m, 1) all N feature outputs.
        loss_grads_feat: (N, m, d) ∇ₓL(f⁽ⁱ⁾(x), y).
        y: (m, 1) ±1 labels.

    Returns:
        alpha (N, m) and the decomposition (m, d).
    """
    r_full = loss_output_gradient(f_full, y, "binary")[:, 0]  # (m,)
    r_feat = loss_output_gradient(f_feat, y, "binary")[..., 0]  # (N, m)
    alpha = r_full[None, :] / r_feat
    return alpha, np.einsum("im,imd->md", alpha, loss_grads_feat)


def proposition1_check(
    *,
    gram: np.ndarray,
    eigvals: np.ndarray,
    eigvecs: np.ndarray,
    y_train: np.ndarray,
    k_eval_train: np.ndarray,
    y_eval: np.ndarray,
    contract: ContractFn,
) -> dict[str, float]:
    """Prop. 1 and Eq. 31 on real data (binary task), against a linear solve.

    Reference: ∇ₓL(f_∞) = (σ(f_∞) − ŷ) D(x)ᵀ Θ⁻¹Y with Θ⁻¹Y from `np.linalg.solve`.
    Decomposition: Σ_i α_i ∇ₓL(f⁽ⁱ⁾) over ALL n features, with ∇ₓL(f⁽ⁱ⁾) =
    s_i D(x)ᵀ v_i; by linearity of D(x)ᵀ it is evaluated as D(x)ᵀ u(x) with
    u(x) = Σ_i α_i(x) s_i(x) v_i, i.e. one contraction with an (n × m) matrix whose
    diagonal blocks are kept.

    Args:
        gram: (n, n) Θ(X, X); eigvals, eigvecs: its spectrum.
        y_train: (n, 1) ±1; k_eval_train: (m, n); y_eval: (m, 1).
        contract: c (n, J) -> (m, d, J) at the same m points.

    Returns:
        {"sum_max_abs_err", "sum_rel_err" (Σ f⁽ⁱ⁾ vs f_∞), "grad_max_abs_err",
        "grad_rel_err" (Prop. 1), "alpha_max_abs"}.
    """
    n = eigvals.shape[0]
    c_solve = np.linalg.solve(np.asarray(gram, dtype=np.float64), y_train)
    f_full = k_eval_train @ c_solve  # (m, 1)
    w = feature_weights(eigvals, eigvecs, y_train, np.arange(n))  # (n, 1)
    f_feat = feature_outputs(k_eval_train, eigvecs, w)  # (n, m, 1)
    sum_err = float(np.abs(f_feat.sum(axis=0) - f_full).max())
    r_full = loss_output_gradient(f_full, y_eval, "binary")  # (m, 1)
    r_feat = loss_output_gradient(f_feat, y_eval, "binary")[..., 0]  # (n, m)
    alpha = r_full[:, 0][None, :] / r_feat  # (n, m), supp. Eq. 33
    u = eigvecs @ (alpha * r_feat * w)  # (n, m): Σ_i α_i s_i v_i per point
    m = f_full.shape[0]
    decomposed = contract(u)[np.arange(m), :, np.arange(m)]  # (m, d)
    ref = r_full * contract(c_solve)[:, :, 0]
    grad_err = float(np.abs(decomposed - ref).max())
    return {
        "sum_max_abs_err": sum_err,
        "sum_rel_err": sum_err / float(np.abs(f_full).max()),
        "grad_max_abs_err": grad_err,
        "grad_rel_err": grad_err / float(np.abs(ref).max()),
        "alpha_max_abs": float(np.abs(alpha).max()),
    }
