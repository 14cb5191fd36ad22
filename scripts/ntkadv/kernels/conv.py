"""Direct infinite-width NTK / NNGP of the paper's CONV-depth ReLU networks.

The architecture is that of `kernels.stax_from_spec` for family ``conv``
(experiments.md "Architecture conventions", supp. App. C)::

    depth x [stax.Conv(width, (f, f), padding='SAME', W_std, b_std,
                       parameterization='ntk'), stax.Relu()],
    stax.Flatten(), stax.Dense(1, W_std, b_std)

`conv_ntk_fn` returns the same analytic kernel as neural-tangents'
``kernel_fn(x1, x2, 'ntk')`` (Novak et al. 2020; Arora et al. 2019, "On exact
computation with an infinitely wide neural net"), written out directly.

Because the network ends in Flatten (no pooling), only same-position covariances of
the hidden layers are needed (neural-tangents' ``diagonal_spatial`` layout). Per
layer, with K (NNGP) and Θ (NTK) maps of shape (H, W, n1, n2) and the per-input
variance maps c1 (H, W, n1), c2 (H, W, n2):

* input: K₀[p] = x1[p]·x2[p] / C, c₀[p] = |x[p]|² / C (channel means), Θ₀ = 0;
* Conv (NTK parameterization, SAME zero padding): with A the f x f window sum
  divided by the number of taps f² (also at the borders, as neural-tangents'
  ``_conv_kernel_diagonal_spatial`` does),
  K ← W_std²·A(K) + b_std², c ← W_std²·A(c) + b_std², Θ ← W_std²·A(Θ) + K;
* Relu, the arc-cosine kernel of degree 1 (Cho & Saul 2009; neural-tangents
  ``ABRelu(0, 1)``): with s = √(c1 c2 − K²) and θ = arctan2(s, K) ∈ [0, π],
  K ← s/(2π) + (1/2 − θ/(2π))·K, Θ ← (1/2 − θ/(2π))·Θ, c ← c/2;
* Flatten + Dense(1): K̄, Θ̄ = means over the H·W positions,
  K_out = W_std²·K̄ + b_std², Θ_out = W_std²·Θ̄ + K_out.

Why not neural-tangents' kernel_fn: on XLA:CPU its ``arctan2`` is not vectorised
(~35 ns per float64 element) and the f x f ``reduce_window`` costs ~22 ns per
element; together with the full-size intermediates the CONV Gram jobs ran 67-97x
above their flop bound. Here

* arctan2 is a branch-free range reduction plus a fitted odd polynomial (only
  abs, min, max, mul, add, one division and selects; ≤ 2e-16 relative error in
  float64, ≤ 1e-7 in float32; `conv_ops.arctan2_nonneg`);
* the window sum is f² shifted slices of a zero-padded map, which XLA fuses into
  the surrounding elementwise loops; its JVP is written so that its transpose
  (reverse mode) is the same shifted-slice sum (`_window_sum_dual`);
* the (H, W, pairs) maps are laid out with the pair index minor (long vector
  loops), the per-input variance maps are computed once outside the pair loops,
  and the pairs are processed one row of x1 (times at most `block_pairs` columns
  of x2) per `lax.map` step so that a layer's maps stay in cache; in reverse
  mode each step is recomputed rather than stored (`_remat_block`), so a VJP
  through many kernel rows needs the memory of one step;
* a few values are steered into (or out of) their own buffers to work around
  XLA:CPU's fusion and buffer-sharing heuristics (`conv_ops._materialize`,
  `conv_ops._single_use`, `conv_ops._runtime_one`, `_pad`, `_relu`,
  `_channel_mean`, `_batch_to`).

Measured on one core (benchmarks/bench_conv_ntk.py, float64, 100 x 100 blocks):
5.5-7.4x faster than neural-tangents (1.1-1.4x the time of the kernel's
multiply-adds at the machine's vectorised rate, vs 6.6-8.6x for neural-tangents)
and 1.15-1.5x faster for vmapped input-gradient tiles (`jacobians.dense_tile_fn`).

Derivatives follow neural-tangents: the square root and the angle carry its
custom JVPs (`conv_ops._snap_sqrt`, `conv_ops._angle`), so at parallel pixels
(x1 == x2, where c1 c2 − K² = 0) the gradient is the one with zero angular part,
finite everywhere. Unlike neural-tangents, such pixels give exactly θ = 0 here: rounding
residues of c1 c2 − K² below 4 eps·c1 c2 are snapped to 0 (neural-tangents turns
them into angles of ~1e-8, i.e. NTK errors of ~1e-10 relative at x1 == x2 for
multi-channel inputs).

The computation runs in the inputs' floating dtype (float32 stays float32;
neural-tangents promotes to float64 under jax x64).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ntkadv.kernels.conv_ops import _angle, _materialize, _runtime_one, _snap_sqrt
from ntkadv.kernels.rows import ONE_PASS_ATTR
from ntkadv.typing import Get, KernelFn

DEFAULT_BLOCK_PAIRS = 128
"""At most this many pairs (one row of x1 times a block of x2) per `lax.map`
step, so that a layer's (H, W, pairs) maps stay in cache: measured 14 vs 46 ns
per pair-pixel for CONV2 on 50 x 50 CIFAR blocks computed in one step."""


# --- layers ------------------------------------------------------------------------


def _pad(a: jax.Array, f: int) -> jax.Array:
    """Zero-pad axes (0, 1) of a map for a SAME f x f window (own buffer).

    Every layer output is padded, also the last: a fusion whose output has the
    shape of an operand that it reads elementwise and that dies there may get
    that operand's buffer (XLA:CPU buffer sharing), and LLVM's vectorised loop
    treats an exactly aliased output as a conflict and runs the scalar loop
    instead (measured 5x slower). Padded outputs never share with the unpadded
    maps they are computed from.
    """
    lo = (f - 1) // 2
    pad = [(lo, f - 1 - lo), (lo, f - 1 - lo)] + [(0, 0)] * (a.ndim - 2)
    return _materialize(jnp.pad(a, pad))


def _window_sum_padded(padded: jax.Array, f: int) -> jax.Array:
    """f x f window sums over axes (0, 1) of a `_pad`-ed map: (h + f − 1, w + f − 1,
    ...) -> (h, w, ...), as f² shifted slices (plain vector loads)."""
    h, w = padded.shape[0] - f + 1, padded.shape[1] - f + 1
    out = None
    for i in range(f):
        for j in range(f):
            term = padded[i : i + h, j : j + w]
            out = term if out is None else out + term
    return out


def _window_sum_dual(t: jax.Array, f: int) -> jax.Array:
    """The same window sum written as a sum of f² pads followed by one slice.

    Only used as the JVP of `_window_mean`: its transpose (what reverse mode
    runs) is one pad followed by f² slices, i.e. `_window_sum_padded` again (the
    SAME window sum with a symmetric all-ones filter is self-adjoint), where
    JAX's transpose of the slices would give f² separate full-size pads
    (measured 12 vs 28 ns per pair-pixel for a vmapped input-gradient tile).
    """
    lo = (f - 1) // 2
    rest = [(0, 0)] * (t.ndim - 2)
    out = None
    for i in range(f):
        for j in range(f):
            term = jnp.pad(t, [(f - 1 - i, i), (f - 1 - j, j)] + rest)
            out = term if out is None else out + term
    h, w = t.shape[0], t.shape[1]
    return out[lo : lo + h, lo : lo + w]


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _window_mean(x: jax.Array, f: int) -> jax.Array:
    """f x f window sums over axes (0, 1) of x (SAME, zero padding), divided by f².

    neural-tangents' ``_conv_kernel_diagonal_spatial`` divides by the number of
    filter taps f² also at the borders (the zero padding counts).

    Args:
        x: (H, W, ...) map. Its producer is fused into the padding (`_pad`).
        f: filter size.

    Returns:
        (H, W, ...) window means.
    """
    return _window_sum_padded(_pad(x, f), f) * (1.0 / (f * f))


@_window_mean.defjvp
def _window_mean_jvp(f, primals, tangents):
    return _window_mean(primals[0], f), _window_sum_dual(tangents[0], f) * (
        1.0 / (f * f)
    )


def _channel_mean_impl(a: jax.Array, b: jax.Array, axis_a: int, axis_b: int):
    n_ch = a.shape[axis_a]
    if n_ch > 16:
        return _channel_mean_dual(a, b, axis_a, axis_b)
    out = None
    for ch in range(n_ch):
        term = jnp.take(a, ch, axis=axis_a) * jnp.take(b, ch, axis=axis_b)
        out = term if out is None else out + term
    return out / n_ch


def _channel_mean_dual(a: jax.Array, b: jax.Array, axis_a: int, axis_b: int):
    """Σ_c a·b / C as a broadcast product reduced over a trailing channel axis."""
    prod = jnp.moveaxis(a, axis_a, -1) * jnp.moveaxis(b, axis_b, -1)
    return jnp.sum(prod, axis=-1) / a.shape[axis_a]


@functools.partial(jax.custom_jvp, nondiff_argnums=(3, 4))
def _channel_mean(
    a: jax.Array, b: jax.Array, one: jax.Array, axis_a: int, axis_b: int
) -> jax.Array:
    """Σ_c a·b / C over channel axes `axis_a` of a and `axis_b` of b.

    The remaining axes broadcast. For few channels a fixed left-to-right sum of
    products (one loop, pair index minor), so that an image's K₀ with itself is
    computed like its variance c₀. The JVP is the reduction form
    (`_channel_mean_dual`), whose transpose is one broadcast product per input
    instead of a full-size scatter per channel (the transpose of the channel
    slices); it is divided by the runtime 1.0 `one` so that, transposed, the
    incoming cotangent is written to a buffer once instead of being recomputed
    for every channel of the input gradient.
    """
    return _channel_mean_impl(a, b, axis_a, axis_b)


@_channel_mean.defjvp
def _channel_mean_jvp(axis_a, axis_b, primals, tangents):
    (a, b, one), (da, db, _) = primals, tangents
    out = _channel_mean(a, b, one, axis_a, axis_b)
    dual = _channel_mean_dual(da, b, axis_a, axis_b)
    return out, (dual + _channel_mean_dual(a, db, axis_a, axis_b)) / one


def _variances(
    c0: jax.Array, depth: int, f: int, w2: float, b2: float
) -> list[jax.Array]:
    """Per-layer pre-ReLU variance maps of one set of inputs.

    Args:
        c0: (H, W, n) input variances |x[p]|² / C.
        depth, f, w2, b2: network depth, filter size, W_std², b_std².

    Returns:
        depth maps (H, W, n): c_l = w2·A(c_{l−1}/2) + b2 (c_0 not halved).
    """
    out, c = [], c0
    for layer in range(depth):
        if layer > 0:
            c = c / 2
        c = w2 * _window_mean(c, f) + b2
        out.append(c)
    return out


def _relu(
    k: jax.Array, theta: jax.Array | None, p: jax.Array, one: jax.Array
) -> tuple[jax.Array, jax.Array | None]:
    """Arc-cosine (ReLU) map of one layer, neural-tangents ``ABRelu(0, 1)``.

    Args:
        k: (H, W, N) NNGP map after the conv (N pairs).
        theta: (H, W, N) NTK map after the conv, or None (NNGP only).
        p: (H, W, N) products c1·c2 of the two inputs' variances.
        one: scalar 1.0 from `_runtime_one`.

    Returns:
        The (K, Θ) maps after the ReLU (Θ None if `theta` is).
    """
    s = _snap_sqrt(p - k * k, p)
    angle = _angle(s, k)
    if theta is None:
        return s * (1 / (2 * np.pi)) + (0.5 - angle * (1 / (2 * np.pi))) * k, None
    # 1/2 − θ/(2π) is read by both outputs, and XLA:CPU (no multi-output loop
    # fusion) would recompute the polynomial in each. Ending it in a division, an
    # "expensive" op that XLA writes to a buffer instead of duplicating, by a
    # runtime 1.0 computes it once; (π − θ)/(2π) is exactly 1/2 at θ = 0.
    dot_sigma = (np.pi - angle) / ((2 * np.pi) * one)
    return s * (1 / (2 * np.pi)) + dot_sigma * k, theta * dot_sigma


def _network(
    k: jax.Array,
    prods: Sequence[jax.Array],
    f: int,
    w2: float,
    b2: float,
    want_ntk: bool,
    one: jax.Array,
) -> jax.Array:
    """Conv/Relu layers, Flatten and Dense(1) on same-position covariance maps.

    Args:
        k: (H, W, N) input covariances K₀ of N pairs.
        prods: per layer, (H, W, N) products c1·c2 of the pairs' pre-ReLU
            variances (`_variances`).
        f, w2, b2: filter size, W_std², b_std².
        want_ntk: Θ (True) or the NNGP (False).
        one: scalar 1.0 from `_runtime_one`.

    Returns:
        (N,) kernel values.
    """
    h, w = k.shape[0], k.shape[1]
    theta = None
    for layer, p in enumerate(prods):
        # the division by `one` makes XLA write the conv output to a buffer once
        # instead of recomputing the window sum in every reader
        k = (w2 * _window_mean(k, f) + b2) / one
        if want_ntk:
            theta = k if layer == 0 else w2 * _window_mean(theta, f) + k
        k, theta = _relu(k, theta, p, one)

    def mean(m: jax.Array) -> jax.Array:
        # over the padded map (see `_pad` on buffer sharing); the zeros add nothing
        return jnp.sum(_pad(m, f), axis=(0, 1)) * (1.0 / (h * w))

    k_out = w2 * mean(k) + b2
    if not want_ntk:
        return k_out
    return w2 * mean(theta) + k_out


def _batch_to(x: jax.Array, axis: int) -> jax.Array:
    """(n, H, W, C) images with the batch axis moved to `axis`.

    A reshape when n = 1 (the pair kernels that jax.vmap batches for input
    Jacobians): XLA keeps a transpose of a unit axis as a layout-changing copy,
    in the backward pass too.
    """
    if x.shape[0] == 1:
        shape = list(x.shape[1:])
        shape.insert(axis, 1)
        return x.reshape(shape)
    return jnp.moveaxis(x, 0, axis)


def _split(m: jax.Array, axis: int, size: int) -> tuple[jax.Array, int]:
    """Blocks of `size` along `axis`, stacked on a new leading axis.

    The last block is completed by repeating the last entry (so every block has
    one compiled shape; the repeats are sliced off the result).

    Returns:
        (n_blocks, *m.shape with m.shape[axis] -> size) array, and n_blocks.
    """
    n = m.shape[axis]
    n_blocks = -(-n // size)
    extra = n_blocks * size - n
    if extra:
        last = lax.slice_in_dim(m, n - 1, n, axis=axis)
        m = jnp.concatenate([m, jnp.repeat(last, extra, axis=axis)], axis=axis)
    m = m.reshape(m.shape[:axis] + (n_blocks, size) + m.shape[axis + 1 :])
    return jnp.moveaxis(m, axis, 0), n_blocks


def _remat_block(block: Callable) -> Callable:
    """`block` under `jax.checkpoint`: reverse mode keeps only each `lax.map` step's
    inputs and recomputes the step's (H, W, pairs) maps in the backward pass.

    Without it the scan behind `lax.map` stacks every step's residual maps, so a
    VJP through kernel rows (the PGD steps of `ntkadv.attacks.pgd`) holds
    ~R x rows x n x H x W floats (R residual maps per layer): measured for CONV2 on
    8 CIFAR rows x 1000 training images, XLA temp 881 -> 65 MB and 120 -> 50 ms
    per row (the recomputed block stays in cache; its residuals did not).
    Forward evaluation is unchanged (checkpoint only acts under differentiation).
    """
    return jax.checkpoint(block)


def _block_fn(f: int, w2: float, b2: float, want_ntk: bool) -> Callable:
    """The kernel of one `lax.map` step of `conv_ntk_fn`: the network's recursion
    (`_network`) on the pairs of a block of rows against a block of columns.

    Args:
        f: filter size; w2, b2: W_std² and b_std²; want_ntk: Θ (else the NNGP K).
    """

    def block(
        x1: jax.Array,
        c1s: Sequence[jax.Array],
        x2: jax.Array,
        c2s: Sequence[jax.Array],
        one: jax.Array,
    ) -> jax.Array:
        """(r, c) kernel of x1 (r, H, W, C) against x2 (c, H, W, C).

        c1s, c2s: the inputs' per-layer variance maps (H, W, r), (H, W, c).
        """
        r, h, w = x1.shape[0], x1.shape[1], x1.shape[2]
        n2 = x2.shape[0]
        pairs = (h, w, r * n2)
        a = _batch_to(x1, 2)[:, :, :, None, :]  # (H, W, r, 1, C)
        bt = _batch_to(x2, 3)[:, :, None]  # (H, W, 1, C, c)
        k = _channel_mean(a, bt, one, 4, 3).reshape(pairs)  # pair index (i, j) minor
        prods = [
            (c1[:, :, :, None] * c2[:, :, None, :]).reshape(pairs)
            for c1, c2 in zip(c1s, c2s, strict=True)
        ]
        return _network(k, prods, f, w2, b2, want_ntk, one).reshape(r, n2)

    return block


def conv_ntk_fn(
    depth: int,
    W_std: float = math.sqrt(2.0),
    b_std: float = 0.1,
    filter_size: int = 3,
    get: Get = "ntk",
    block_pairs: int = DEFAULT_BLOCK_PAIRS,
) -> KernelFn:
    """Analytic NTK (or NNGP) of depth x [Conv(f x f, SAME), Relu], Flatten, Dense(1).

    Equal (to rounding) to ``kernel_fn(x1, x2, get)`` of
    ``kernels.stax_from_spec({'family': 'conv', 'depth': depth, 'W_std': W_std,
    'b_std': b_std, 'filter_size': filter_size})``, i.e. neural-tangents' stax
    Conv / Relu / Flatten / Dense in NTK parameterization; the recursion is in the
    module docstring.

    Args:
        depth: number of Conv + Relu blocks (≥ 1).
        W_std: weight standard deviation of every layer.
        b_std: bias standard deviation of every layer.
        filter_size: spatial filter size f (f x f filters, SAME padding).
        get: 'ntk' (Θ) or 'nngp' (output covariance at initialisation).
        block_pairs: at most this many pairs (one input of the shorter side
            against a block of the other) are computed per `lax.map` step; only
            affects speed.

    Returns:
        kernel_fn(x1 (n1, H, W, C), x2 (n2, H, W, C)) -> (n1, n2): pure, jittable,
        vmappable and differentiable (neural-tangents' derivative conventions),
        computed in the inputs' floating dtype.
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    if get not in ("ntk", "nngp"):
        raise ValueError(f"get must be 'ntk' or 'nngp', got {get!r}")
    f = int(filter_size)
    w2 = float(W_std) ** 2
    b2 = float(b_std) ** 2
    block = _block_fn(f, w2, b2, get == "ntk")

    def kernel_fn(x1: jax.Array, x2: jax.Array) -> jax.Array:
        dtype = jnp.result_type(x1, x2, jnp.float32)
        if not jnp.issubdtype(dtype, jnp.floating):
            dtype = jnp.float32
        x1, x2 = jnp.asarray(x1, dtype), jnp.asarray(x2, dtype)
        n1, n2 = x1.shape[0], x2.shape[0]
        if n1 > n2:  # loop over the shorter side (Θ is symmetric)
            return kernel_fn(x2, x1).T
        a = _batch_to(x1, 2)  # (H, W, n1, C)
        bt = _batch_to(x2, 3)  # (H, W, C, n2)
        one = _runtime_one(x1)
        c1s = _variances(_channel_mean(a, a, one, 3, 3), depth, f, w2, b2)
        c2s = _variances(_channel_mean(bt, bt, one, 2, 2), depth, f, w2, b2)
        # one x1 row per step (several rows would flatten the pair index with a
        # division per element), x2 in column blocks of at most block_pairs
        cols = n2 if n2 <= block_pairs else -(-n2 // -(-n2 // block_pairs))

        if cols < n2:
            x2_b, n_col = _split(x2, 0, cols)
            c2s_b = [_split(c, 2, cols)[0] for c in c2s]

        # inside a lax.map, blocks are rematerialised in reverse mode (see
        # `_remat_block`); a lone block (a pair kernel, one short row) is not
        mapped = _remat_block(block) if (n1 > 1 or cols < n2) else block

        def row(x1_r: jax.Array, c1s_r: list[jax.Array]) -> jax.Array:
            if cols == n2:
                return mapped(x1_r, c1s_r, x2, c2s, one)
            out = lax.map(
                lambda blk: mapped(x1_r, c1s_r, blk[0], blk[1], one), (x2_b, c2s_b)
            )  # (n_col, 1, cols)
            return out.reshape(1, n_col * cols)[:, :n2]

        if n1 == 1:
            return row(x1, c1s)
        out = lax.map(
            lambda blk: row(blk[0][None], [c[:, :, None] for c in blk[1]]),
            (x1, [jnp.moveaxis(c, 2, 0) for c in c1s]),
        )  # (n1, 1, n2)
        return out.reshape(n1, n2)

    # rows are computed a block of columns at a time anyway: PGD's binary
    # gradients run in one pass over them (`ntkadv.kernels.rows`)
    setattr(kernel_fn, ONE_PASS_ATTR, True)
    return kernel_fn
