"""Analytic NTKs of the paper's architectures (pure, jittable kernel functions).

Tsilivis & Kempe (2022) use infinite-width kernels of three families (experiments.md
"Architecture conventions", supp. App. C); the families, their networks and their
order are the registry `ntkadv.kernels.families`:

* ``fc``: Flatten, ``depth`` x [Dense(W_std, b_std), ReLU], Dense(1);
* ``conv``: ``depth`` x [Conv(f x f, SAME, W_std, b_std), ReLU], Flatten, Dense(1);
* ``myrtle`` (the authors' notebook): the conv body, AvgPool(2 x 2, stride 2),
  Flatten, Dense(1);
* ``twolayer``: the NTK of the wide two-layer net of supp. Eq. 28 with the second
  layer frozen, supp. Eq. 29:
  Θ(x, x') = (1/2 − arccos(cos∠(x, x')) / (2π)) · xᵀx' on flattened inputs.

The fc/conv/myrtle kernels come from `neural_tangents.stax` (NTK parameterization,
W_std = √2, b_std = 0.1 by default). All kernels are scalar-output: a k-output
network's NTK is Θ ⊗ I_k. Kernel functions are pure and jittable;
`ntkadv.kernels.blocked` evaluates them block by block.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from ntkadv.kernels.families import FAMILIES, family  # noqa: F401 (FAMILIES re-exported)
from ntkadv.typing import Get, KernelFn

SPEC_DEFAULTS: dict[str, Any] = {
    "depth": 1,
    "W_std": math.sqrt(2.0),
    "b_std": 0.1,
    "parameterization": "ntk",
    "filter_size": 3,
}


def full_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The architecture spec with the schema defaults filled in (for attrs and stax)."""
    out = {**SPEC_DEFAULTS, **dict(spec)}
    family(out.get("family"))  # one-line ValueError for an unknown family
    return out


def stax_from_spec(spec: Mapping[str, Any], width: int = 512):
    """The `neural_tangents.stax` network of a spec (its family's registry builder).

    The width only matters for the finite network (`init_fn`, `apply_fn`, used by
    tests against the empirical NTK); the analytic `kernel_fn` is its infinite-width
    limit and does not depend on it.

    Args:
        spec: {family: fc|conv|myrtle, depth, W_std, b_std, parameterization,
            filter_size}.
        width: hidden width (Dense units or Conv channels) of the finite network.

    Returns:
        The stax triple ``(init_fn, apply_fn, kernel_fn)`` with one output unit.
    """
    from ntkadv.compat import import_neural_tangents

    stax = import_neural_tangents().stax

    s = full_spec(spec)
    build = family(s["family"]).stax
    if build is None:
        raise ValueError(f"family {s['family']!r} has no stax network")
    return stax.serial(*build(stax, s, width))


def _safe_arccos(c: jax.Array) -> jax.Array:
    """arccos with a finite gradient everywhere, snapped to 0 / π where |c| ≈ 1.

    Near c = 1 the angle computed from a rounded cosine is pure noise (an error of
    one ulp in c moves arccos by ~1e-8 in float64), so cosines within 100 eps of ±1
    (angles below ~2e-7 rad in float64) are treated as exactly (anti)parallel. At
    x ∥ x' the angle has a cone-shaped kink; its gradient is taken as 0, the
    symmetric element of the subdifferential, which is also what central
    differences measure and what neural-tangents' ReLU kernel returns (safe sqrt
    inside arctan2).
    """
    tol = 100 * jnp.finfo(c.dtype).eps
    inside = jnp.abs(c) < 1 - tol
    c_in = jnp.where(inside, c, 0.0)
    edge = jnp.where(c > 0, 0.0, jnp.pi).astype(c.dtype)
    return jnp.where(inside, jnp.arccos(c_in), edge)


def twolayer_ntk(x1: jax.Array, x2: jax.Array) -> jax.Array:
    """NTK of the two-layer ReLU net with frozen ±1 output layer, supp. Eq. 29.

    Θ(x, x') = (1/2 − θ(x, x') / (2π)) xᵀx', θ = arccos(xᵀx' / (‖x‖‖x'‖)); it is
    the infinite-width limit of (1/m) Σ_r 1[w_rᵀx > 0] 1[w_rᵀx' > 0] xᵀx' for the net
    f(x) = m^{-1/2} A relu(W x) of supp. Eq. 28 and does not depend on the scale of W.

    Args:
        x1: (n1, *input_shape) inputs (flattened internally).
        x2: (n2, *input_shape) inputs.

    Returns:
        (n1, n2) kernel matrix.
    """
    f1 = x1.reshape(x1.shape[0], -1)
    f2 = x2.reshape(x2.shape[0], -1)
    dots = f1 @ f2.T
    # einsum (a dot_general), not sum(f * f): it stays a dot under vmap / JVP
    sq1 = jnp.einsum("id,id->i", f1, f1)
    sq2 = jnp.einsum("jd,jd->j", f2, f2)
    tiny = jnp.finfo(dots.dtype).tiny
    norms = jnp.sqrt(jnp.maximum(sq1[:, None] * sq2[None, :], tiny))
    theta = _safe_arccos(dots / norms)
    return (0.5 - theta / (2 * jnp.pi)) * dots


def kernel_fn_from_spec(
    spec: Mapping[str, Any], get: Get = "ntk", implementation: str = "auto"
) -> KernelFn:
    """Analytic infinite-width kernel of an architecture spec (pure, jittable).

    Args:
        spec: config["architectures"][arch]: {family, depth, W_std, b_std,
            parameterization, filter_size} (missing keys take `SPEC_DEFAULTS`).
        get: 'ntk' (Θ) or 'nngp' (the output covariance at initialisation, stax
            families only; supp. Eq. 29 gives only the NTK of the two-layer net).
        implementation: 'auto' (conv with NTK parameterization: the direct
            diagonal-spatial kernel `ntkadv.kernels.conv.conv_ntk_fn`, 5-8x faster
            and equal to neural-tangents to ~4e-15; twolayer: supp. Eq. 29;
            everything else, e.g. myrtle: stax) or
            'stax' (always neural-tangents, the reference).

    Returns:
        kernel_fn(x1 (n1, H, W, C), x2 (n2, H, W, C)) -> (n1, n2) array. fc and
        twolayer also accept already flattened (n, d) inputs.
    """
    s = full_spec(spec)
    if get not in ("ntk", "nngp"):
        raise ValueError(f"get must be 'ntk' or 'nngp', got {get!r}")
    if implementation not in ("auto", "stax"):
        raise ValueError(
            f"implementation must be 'auto' or 'stax', got {implementation!r}"
        )
    if s["family"] == "twolayer":
        if get != "ntk":
            raise ValueError("the twolayer family (supp. Eq. 29) has only an NTK")
        return twolayer_ntk
    if (
        implementation == "auto"
        and s["family"] == "conv"
        and s["parameterization"] == "ntk"
    ):
        from ntkadv.kernels.conv import conv_ntk_fn
        from ntkadv.kernels.rows import ONE_PASS_ATTR, prefers_one_pass

        direct = conv_ntk_fn(s["depth"], s["W_std"], s["b_std"], s["filter_size"], get)

        def conv_kernel_fn(x1: jax.Array, x2: jax.Array) -> jax.Array:
            # the input dtype sets the precision: cast to jax's default float (float64
            # under x64), as neural-tangents computes
            dtype = jnp.result_type(float)
            return direct(jnp.asarray(x1, dtype), jnp.asarray(x2, dtype))

        setattr(conv_kernel_fn, ONE_PASS_ATTR, prefers_one_pass(direct))
        return conv_kernel_fn
    _, _, nt_kernel_fn = stax_from_spec(s)

    def kernel_fn(x1: jax.Array, x2: jax.Array) -> jax.Array:
        return nt_kernel_fn(x1, x2, get)

    return kernel_fn
