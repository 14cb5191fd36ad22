"""Elementwise primitives of the direct CONV NTK (`ntkadv.kernels.conv`).

Three groups, all elementwise and shape-agnostic:

* arctan2 / arccos from vectorisable ops (`arctan2_nonneg`, `arccos`): on XLA:CPU
  neural-tangents' ``arctan2`` is not vectorised (~35 ns per float64 element), so
  here arctan2 is a branch-free range reduction plus a fitted odd polynomial (only
  abs, min, max, mul, add, one division and selects; ≤ 2e-16 relative error in
  float64, ≤ 1e-7 in float32);
* steering XLA:CPU's fusion: a few values are steered into (or out of) their own
  buffers to work around XLA:CPU's fusion and buffer-sharing heuristics
  (`_materialize`, an identity behind an optimization barrier with a batching rule
  and an identity JVP; `_single_use`; `_runtime_one`, a 1.0 XLA cannot
  constant-fold);
* neural-tangents' derivative conventions: the square root and the angle carry its
  custom JVPs (`_snap_sqrt`, `_angle`), so at parallel pixels (x1 == x2, where
  c1 c2 − K² = 0) the gradient is the one with zero angular part, finite
  everywhere. Unlike neural-tangents, such pixels give exactly θ = 0 here: rounding
  residues of c1 c2 − K² below 4 eps·c1 c2 are snapped to 0 (neural-tangents turns
  them into angles of ~1e-8, i.e. NTK errors of ~1e-10 relative at x1 == x2 for
  multi-channel inputs).

Every custom_jvp / custom_vmap rule is registered here, once; `conv` imports the
functions.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_batching import custom_vmap

# atan(x) = x + x·z·g(z), z = x², |x| ≤ tan(π/8): g fitted by weighted least squares
# on Chebyshev nodes against the series Σ_k (−z)^k / (2k + 3) in extended precision.
# Max relative error of the evaluation on [0, tan(π/8)]: 1.5e-16 in float64 (10
# coefficients), 6.2e-8 in float32 (5 coefficients).
_ATAN_G64 = (
    -0.3333333333333001,
    0.1999999999906221,
    -0.1428571419337934,
    0.11111106586085688,
    -0.09090781009936388,
    0.0769005042254142,
    -0.06640979261432393,
    0.05691854682379452,
    -0.04357261313175095,
    0.02123888863761299,
)
_ATAN_G32 = (
    -0.3333331346511841,
    0.19998441636562347,
    -0.1424306482076645,
    0.10590773075819016,
    -0.060713041573762894,
)
_TAN_PI_8 = math.sqrt(2.0) - 1.0
_NT_TOL = 1e-30  # neural-tangents' safe_tol in _sqrt_jvp and _arctan2_jvp
_SNAP_EPS = 4.0  # c1 c2 − K² ≤ _SNAP_EPS·eps·c1 c2 counts as parallel


# --- arctan2 / arccos from vectorisable ops --------------------------------------


def _atan_small(x: jax.Array) -> jax.Array:
    """atan(x) for |x| ≤ tan(π/8), any shape (float32 uses the shorter fit)."""
    coeffs = _ATAN_G64 if jnp.finfo(x.dtype).bits > 32 else _ATAN_G32
    z = x * x
    g = jnp.full_like(z, coeffs[-1])
    for c in coeffs[-2::-1]:
        g = g * z + c
    return x + x * (z * g)


def _single_use(x: jax.Array, lower: float) -> jax.Array:
    """max(x, lower) for x ≥ lower: the identity, in a form XLA keeps.

    XLA:CPU does not fuse an "expensive" op (divide, sqrt) into a consumer that
    reads it more than once; it writes the op's result to a full-size buffer and
    splits the consumers into separate loops. Read through this cheap single-user
    op, the division of `arctan2_nonneg` stays in one loop with its polynomial
    (measured 2.6 vs 14 ns per float64 element).
    """
    return jnp.maximum(x, lower)


def arctan2_nonneg(
    y: jax.Array, x: jax.Array, fill_zero: float = np.pi / 2
) -> jax.Array:
    """arctan2(y, x) ∈ [0, π] for y ≥ 0, from vectorisable ops only.

    Range reduction: with mn, mx = min, max(y, |x|), t = mn/mx ∈ [0, 1]; for
    t > tan(π/8) the identity atan(t) = π/4 + atan((t − 1)/(t + 1)) is used, written
    as the single division (mn − mx)/(mn + mx); the reduced argument (|·| ≤ tan(π/8))
    goes to the fitted polynomial, then π/2 − · (y > |x|) and π − · (x < 0) restore
    the octant. Relative error ≤ 4e-16 in float64. Derivatives are those of the
    polynomial (`_angle` carries neural-tangents' JVP instead).

    Args:
        y: array, y ≥ 0 (negative values are treated as |y|).
        x: array broadcastable with y, same dtype.
        fill_zero: value at y = x = 0 (neural-tangents' ``_arctan2`` uses π/2).

    Returns:
        The angle, of the broadcast shape of y and x.
    """
    ay, ax = jnp.abs(y), jnp.abs(x)
    mx = jnp.maximum(ay, ax)
    mn = jnp.minimum(ay, ax)
    big = mn > _TAN_PI_8 * mx
    num = jnp.where(big, mn - mx, mn)
    den = jnp.where(big, mn + mx, mx)
    zero = den == 0
    phi = _atan_small(_single_use(num / jnp.where(zero, 1.0, den), -1.0))
    phi = jnp.where(big, phi + np.pi / 4, phi)
    phi = jnp.where(ay > ax, np.pi / 2 - phi, phi)
    phi = jnp.where(x < 0, np.pi - phi, phi)
    return jnp.where(zero, fill_zero, phi)


def arccos(c: jax.Array) -> jax.Array:
    """arccos(c) = arctan2(√((1 − c)(1 + c)), c) from vectorisable ops.

    Relative error ≤ ~1e-15 in float64 on [−1, 1] (1 − c is exact for c ≥ 1/2, so
    small angles near c = 1 keep full relative accuracy). Inputs are clipped to
    [−1, 1].
    """
    c = jnp.clip(c, -1.0, 1.0)
    return arctan2_nonneg(jnp.sqrt((1.0 - c) * (1.0 + c)), c)


# --- steering XLA:CPU's fusion -----------------------------------------------------


@custom_vmap
def _barrier_batched(x: jax.Array) -> jax.Array:
    return lax.optimization_barrier(x)


@_barrier_batched.def_vmap
def _barrier_vmap(axis_size, in_batched, x):
    return _barrier_batched(x), in_batched[0]


@jax.custom_jvp
def _materialize(x: jax.Array) -> jax.Array:
    """The identity behind an XLA optimization barrier.

    Used on padded maps: it stops XLA's algebraic simplifier from rewriting the f²
    slices of a pad into pads of slices (one full-size buffer per distinct
    shape), so the padded map is written once and the shifted reads stay plain
    vector loads. jax 0.4.35 has no batching or JVP rule for
    `lax.optimization_barrier`; `custom_vmap` supplies the batching and the JVP
    is the identity on tangents.
    """
    return _barrier_batched(x)


@_materialize.defjvp
def _materialize_jvp(primals, tangents):
    return _materialize(primals[0]), tangents[0]


def _runtime_one(x: jax.Array) -> jax.Array:
    """A scalar 1.0 that XLA cannot constant-fold (derived from an input value)."""
    v = lax.stop_gradient(x.reshape(-1)[0])
    return 1.0 + 0.0 * jnp.where(jnp.isfinite(v), v, 0.0)


# --- neural-tangents' derivative conventions ---------------------------------------


@jax.custom_jvp
def _snap_sqrt(s2: jax.Array, p: jax.Array) -> jax.Array:
    """√s2 where s2 > 4 eps·p, else 0 (s2 = c1 c2 − K², p = c1 c2 ≥ 0).

    At parallel pixels (x1 == x2, or patches shared by two images) s2 is 0 in exact
    arithmetic but a rounding residue of ~ulp(K²) in floating point (XLA:CPU also
    contracts c1 c2 − K·K into a fused multiply-add), which would give a spurious
    angle θ ~ √eps. Residues up to 4 eps·p, below the resolution of s2 itself
    (θ < 2√eps ≈ 3e-8 in float64), are snapped to 0.
    """
    tol = _SNAP_EPS * jnp.finfo(s2.dtype).eps
    return jnp.sqrt(jnp.where(s2 > tol * p, s2, 0.0))


@_snap_sqrt.defjvp
def _snap_sqrt_jvp(primals, tangents):
    """neural-tangents' safe-sqrt tangent: ds2 / (2 s) where s > 0, else 0."""
    (s2, p), (ds2, _) = primals, tangents
    s = _snap_sqrt(s2, p)
    pos = s > 0
    return s, jnp.where(pos, ds2 / (2 * jnp.where(pos, s, 1.0)), 0.0)


@jax.custom_jvp
def _angle(s: jax.Array, k: jax.Array) -> jax.Array:
    """θ = arctan2(s, k) for s ≥ 0, π/2 at s = k = 0, with neural-tangents' JVP
    (``stax.elementwise._arctan2``): dθ = (k ds − s dk) / max(s² + k², 1e-30)."""
    return arctan2_nonneg(s, k)


@_angle.defjvp
def _angle_jvp(primals, tangents):
    (s, k), (ds, dk) = primals, tangents
    denom = jnp.maximum(s * s + k * k, _NT_TOL)
    return _angle(s, k), ds * (k / denom) - dk * (s / denom)
