"""Kernel-dynamics measurements on a series of empirical NTKs (Sec. 5, supp. App. E).

The functions reproduce the authors' ``measurements.py`` (pure NumPy here):

* kernel similarity ``sim(K1, K2) = tr(K1 K2^T) / sqrt(tr(K1 K1^T) tr(K2 K2^T))``
  (the cosine of the Frobenius inner product) and distance ``1 - sim``;
* the epoch x epoch distance matrix (main Fig. 4 [INFER]);
* polar dynamics: ``radius_t = ||K_t - K_0||_F / ||K_E - K_0||_F`` and
  ``angle_t = arccos sim(K_t, K_0)`` (main Fig. 6), also after replacing every K
  by its projection on the top-k eigenspace ``V_k diag(w_k) V_k^T`` (supp. Fig. 8)
  or on the complementary bottom eigenspace (the authors' code-only variant);
* concentration of norm ("mass") ``sum_{i<=k} lambda_i^2 / sum_i lambda_i^2`` with
  eigenvalues in descending order (main Fig. 5, supp. Fig. 7).

A kernel series is any object ``kernels`` with ``len(kernels)`` and ``kernels[t]``
returning the ``(n, n)`` matrix of epoch t (a NumPy array ``(T, n, n)`` or an h5py
dataset), so paper-scale series (201 x 3000 x 3000) never need to be in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np


class KernelSeries(Protocol):
    """A sequence of ``(n, n)`` kernel matrices indexed by epoch."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: Any) -> np.ndarray: ...


def kernel_matrix(ntk: np.ndarray) -> np.ndarray:
    """The authors' ``(kB, kB)`` matrix of an eNTK of shape ``(B, B, k, k)``.

    ``nt.empirical_ntk_fn(..., trace_axes=())`` returns
    ``ntk[i, j, a, b] = <d f_a(x_i)/d theta, d f_b(x_j)/d theta>``. The authors'
    ``ntk.transpose([3, 1, 2, 0]).reshape(kB, kB)`` puts ``ntk[i, j, a, b]`` at row
    ``b*B + j``, column ``a*B + i``; by the symmetry ``ntk[i, j, a, b] =
    ntk[j, i, b, a]`` this is the output-block-major Gram matrix

        M[a*B + i, b*B + j] = Theta_ab(x_i, x_j),

    i.e. k x k blocks of size B x B, block (a, b) pairing logit a with logit b,
    examples in batch order inside each block.

    Args:
        ntk: ``(B, B, k, k)`` array.

    Returns:
        ``(k*B, k*B)`` array.
    """
    b, b2, k, k2 = ntk.shape
    if b != b2 or k != k2:
        raise ValueError(f"expected a (B, B, k, k) kernel, got {ntk.shape}")
    return ntk.transpose([3, 1, 2, 0]).reshape(k * b, k * b)


def frobenius(k1: np.ndarray, k2: np.ndarray) -> float:
    """``tr(K1 K2^T) = sum_ij K1_ij K2_ij`` accumulated in float64."""
    return float(np.vdot(np.asarray(k1, np.float64), np.asarray(k2, np.float64)))


def kernel_similarity(k1: np.ndarray, k2: np.ndarray) -> float:
    """``tr(K1 K2^T) / sqrt(tr(K1 K1^T) tr(K2 K2^T))`` (authors' kernel_similarity)."""
    return frobenius(k1, k2) / np.sqrt(frobenius(k1, k1) * frobenius(k2, k2))


def kernel_distance(k1: np.ndarray, k2: np.ndarray) -> float:
    """``1 - kernel_similarity(K1, K2)``, in [0, 2]; 0 iff K2 = c K1 with c > 0."""
    return 1.0 - kernel_similarity(k1, k2)


def frobenius_gram(kernels: KernelSeries, block: int = 16) -> np.ndarray:
    """All inner products ``G[s, t] = tr(K_s K_t^T)`` of a series, float64 ``(T, T)``.

    Loads at most two blocks of `block` epochs at a time.
    """
    n_t = len(kernels)
    gram = np.zeros((n_t, n_t))
    for lo in range(0, n_t, block):
        a = np.asarray(kernels[lo : lo + block], np.float64).reshape(
            min(block, n_t - lo), -1
        )
        for lo2 in range(0, lo + 1, block):
            b = (
                a
                if lo2 == lo
                else np.asarray(kernels[lo2 : lo2 + block], np.float64).reshape(
                    min(block, n_t - lo2), -1
                )
            )
            g = a @ b.T
            gram[lo : lo + len(a), lo2 : lo2 + len(b)] = g
            gram[lo2 : lo2 + len(b), lo : lo + len(a)] = g.T
    return gram


def distance_matrix(gram: np.ndarray) -> np.ndarray:
    """``D[s, t] = 1 - sim(K_s, K_t)`` from the Frobenius Gram of the series."""
    norms = np.sqrt(np.diag(gram))
    sim = gram / np.outer(norms, norms)
    return np.clip(1.0 - sim, 0.0, 2.0)


def eigh_descending(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) and matching eigenvectors (columns), float64."""
    w, v = np.linalg.eigh(np.asarray(kernel, np.float64))
    return w[::-1], v[:, ::-1]


def project_top(w: np.ndarray, v: np.ndarray, k: int) -> np.ndarray:
    """``V_k diag(w_k) V_k^T`` for the k largest eigenvalues (w descending)."""
    return (v[:, :k] * w[:k]) @ v[:, :k].T


def project_bottom(w: np.ndarray, v: np.ndarray, k: int) -> np.ndarray:
    """The kernel on the bottom ``n - k`` eigenpairs (complement of the top k)."""
    return (v[:, k:] * w[k:]) @ v[:, k:].T


def top_mass(w: np.ndarray, k: int) -> float:
    """``sum_{i<=k} w_i^2 / sum_i w_i^2`` for eigenvalues `w` in descending order."""
    w2 = np.asarray(w, np.float64) ** 2
    return float(w2[:k].sum() / w2.sum())


def diagonal_block_fraction(kernel: np.ndarray, num_classes: int) -> float:
    """Share of ``||K||_F^2`` in the k diagonal output blocks ``Theta_aa``.

    For the output-block-major matrix of :func:`kernel_matrix`. At initialisation
    the eNTK of a wide net is close to ``Theta (x) I_k`` (share near 1); training
    couples the logits and moves mass to the off-diagonal blocks.
    """
    kern = np.asarray(kernel, np.float64)
    b = kern.shape[0] // num_classes
    blocks = kern.reshape(num_classes, b, num_classes, b)
    diag = sum(np.sum(blocks[a, :, a, :] ** 2) for a in range(num_classes))
    return float(diag / np.sum(kern**2))


def polar_coordinates(
    dist_to_init: np.ndarray, sim_to_init: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Normalised radius ``r_t / r_E`` and angle ``arccos(sim_t)`` (radians)."""
    radius = np.asarray(dist_to_init, np.float64)
    angle = np.arccos(np.clip(np.asarray(sim_to_init, np.float64), -1.0, 1.0))
    final = radius[-1]
    scaled = radius / final if final > 0 else np.zeros_like(radius)
    return scaled, angle


def series_measures(
    kernels: KernelSeries,
    num_classes: int,
    mass_ks: Sequence[int] = (10, 20),
    space_k: int = 20,
    n_eigvals: int = 50,
) -> dict[str, np.ndarray]:
    """All per-epoch measurements of a kernel series in one pass (one eigh/epoch).

    Args:
        kernels: series of T symmetric ``(n, n)`` eNTK matrices (epochs 0..T-1).
        num_classes: k, for the output-block structure.
        mass_ks: cut-offs k of the top-k mass.
        space_k: the top eigenspace dimension of the projected polar dynamics.
        n_eigvals: how many leading eigenvalues to keep per epoch.

    Returns:
        Arrays over epochs, shape ``(T,)`` unless noted: ``radius_{full,top,bottom}``
        and ``angle_{full,top,bottom}`` (polar dynamics relative to epoch 0,
        radius normalised by its value at the last epoch), ``mass_top{k}``,
        ``fro_norm`` (||K_t||_F), ``max_abs``, ``trace``, ``diag_block_fraction``,
        ``eigvals`` ``(T, n_eigvals)`` (descending).
    """
    n_t = len(kernels)
    spaces = ("full", "top", "bottom")
    dist = {s: np.zeros(n_t) for s in spaces}
    sim = {s: np.zeros(n_t) for s in spaces}
    out: dict[str, np.ndarray] = {f"mass_top{k}": np.zeros(n_t) for k in mass_ks}
    for key in ("fro_norm", "max_abs", "trace", "diag_block_fraction"):
        out[key] = np.zeros(n_t)
    out["eigvals"] = np.zeros((n_t, n_eigvals))
    ref: dict[str, np.ndarray] = {}
    for t in range(n_t):
        kern = np.asarray(kernels[t], np.float64)
        kern = 0.5 * (kern + kern.T)
        w, v = eigh_descending(kern)
        views = {
            "full": kern,
            "top": project_top(w, v, space_k),
            "bottom": project_bottom(w, v, space_k),
        }
        if t == 0:
            ref = views
        for s in spaces:
            dist[s][t] = np.linalg.norm(views[s] - ref[s])
            sim[s][t] = kernel_similarity(views[s], ref[s])
        for k in mass_ks:
            out[f"mass_top{k}"][t] = top_mass(w, k)
        out["fro_norm"][t] = np.linalg.norm(kern)
        out["max_abs"][t] = np.abs(kern).max()
        out["trace"][t] = np.trace(kern)
        out["diag_block_fraction"][t] = diagonal_block_fraction(kern, num_classes)
        m = min(n_eigvals, len(w))
        out["eigvals"][t, :m] = w[:m]
    for s in spaces:
        out[f"radius_{s}"], out[f"angle_{s}"] = polar_coordinates(dist[s], sim[s])
    return out


def consecutive_distance(dist: np.ndarray) -> np.ndarray:
    """``1 - sim(K_t, K_{t+1})`` for t = 0..T-2 from a distance matrix."""
    return np.diagonal(np.asarray(dist), offset=1).copy()
