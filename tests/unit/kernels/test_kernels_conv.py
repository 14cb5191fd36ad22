"""Tests of ntkadv.kernels.conv (and .conv_ops): the direct CONV NTK against
neural-tangents' kernel_fn.

Reference values: `kernels.kernel_fn_from_spec({'family': 'conv', ...})`
(neural-tangents stax, float64), run op by op, and an independent NumPy
long-double (80-bit) implementation of the same recursion (`_reference`).

neural-tangents is itself inexact at x1 == x2 (and at patches shared by two
images): c1 c2 − K² is 0 in exact arithmetic there, but

* jitted, XLA:CPU contracts c1 c2 − K·K into a fused multiply-add whose residue
  ±ulp(K²) becomes an angle of ~1e-8 (NTK ~1e-10 off, input gradients ~1e-8 off);
  op by op (not jitted) no multiply-add is formed, which is why the references
  here are not jitted;
* for multi-channel inputs its input covariance x1·x2 and variance |x|² are summed
  in different orders (1 ulp apart), with the same effect.

Identical-image comparisons with neural-tangents therefore use dyadic pixels k/256
(exact products and sums); the long-double reference covers the general case.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkadv.kernels import analytic as kernels
from ntkadv.kernels import conv as conv_ntk
from ntkadv.kernels import conv_ops, jacobians

W_STD, B_STD = math.sqrt(2.0), 0.1
MNIST, CIFAR, SMALL = (28, 28, 1), (32, 32, 3), (8, 8, 3)
RTOL = 1e-13  # kernel values vs neural-tangents / long double (max abs err / max abs)
GRAD_RTOL = 1e-10


def _images(n: int, shape, seed: int = 0, dyadic: bool = False) -> np.ndarray:
    """(n, *shape) pixels in [0, 1]; dyadic: multiples of 1/256 (exact squares)."""
    rng = np.random.default_rng(seed)
    if dyadic:
        return rng.integers(0, 256, size=(n, *shape)) / 256.0
    return rng.uniform(size=(n, *shape))


def _special_pairs(shape, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """x1 = [u0, u1, 0], x2 = [u0, 2 u1, u2, 0]: identical, scaled, distinct and
    zero images (dyadic for multi-channel inputs, where neural-tangents is exact
    at x1 == x2 only then)."""
    u = _images(3, shape, seed, dyadic=shape[-1] > 1)
    zero = np.zeros(shape)
    return np.stack([u[0], u[1], zero]), np.stack([u[0], 2 * u[1], u[2], zero])


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@functools.cache
def _nt(depth: int, get: str = "ntk", w_std=W_STD, b_std=B_STD, f: int = 3):
    """neural-tangents' kernel_fn, not jitted (see the module docstring)."""
    spec = {"family": "conv", "depth": depth, "W_std": w_std, "b_std": b_std}
    return kernels.kernel_fn_from_spec({**spec, "filter_size": f}, get, "stax")


@functools.cache
def _mine(depth: int, get: str = "ntk", w_std=W_STD, b_std=B_STD, f: int = 3):
    return jax.jit(conv_ntk.conv_ntk_fn(depth, w_std, b_std, f, get))


def _pair_grad(kernel_fn, jit: bool = True):
    """jax.grad w.r.t. x1 of Θ(x1, x2) for single images (as jacobians does)."""
    grad = jax.grad(lambda a, b: kernel_fn(a[None], b[None])[0, 0])
    return jax.jit(grad) if jit else grad


def _reference(x1, x2, depth, get="ntk", w_std=W_STD, b_std=B_STD, f=3):
    """The CONV NNGP / NTK recursion in NumPy long double (independent code)."""
    ld = np.longdouble
    a, b = np.asarray(x1, ld), np.asarray(x2, ld)
    n_ch = a.shape[-1]
    pi = 4 * np.arctan(ld(1))
    w2, b2 = ld(w_std) ** 2, ld(b_std) ** 2

    def chan(u, v):  # same left-to-right order for K and the variances
        out = u[..., 0] * v[..., 0]
        for c in range(1, n_ch):
            out = out + u[..., c] * v[..., c]
        return out / n_ch

    def conv(m):  # (..., H, W) SAME window mean, f² taps
        h, w = m.shape[-2:]
        lo = (f - 1) // 2
        p = np.pad(m, [(0, 0)] * (m.ndim - 2) + [(lo, f - 1 - lo)] * 2)
        return sum(p[..., i : i + h, j : j + w] for i in range(f) for j in range(f)) / (
            f * f
        )

    k = chan(a[:, None], b[None, :])  # (n1, n2, H, W)
    c1, c2 = chan(a, a), chan(b, b)
    theta = np.zeros_like(k)
    for _ in range(depth):
        k = w2 * conv(k) + b2
        c1, c2 = w2 * conv(c1) + b2, w2 * conv(c2) + b2
        theta = w2 * conv(theta) + k
        prod = c1[:, None] * c2[None, :]
        s = np.sqrt(np.maximum(prod - k * k, 0))
        dot_sigma = 0.5 - np.arctan2(s, k) / (2 * pi)
        k, theta = s / (2 * pi) + dot_sigma * k, theta * dot_sigma
        c1, c2 = c1 / 2, c2 / 2
    k_out = w2 * k.mean(axis=(-2, -1)) + b2
    return k_out if get == "nngp" else w2 * theta.mean(axis=(-2, -1)) + k_out


# --- (1) values ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape", [SMALL, MNIST, CIFAR], ids=["8x8x3", "mnist", "cifar"]
)
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_equals_neural_tangents_incl_identical_scaled_zero(shape, depth):
    x1, x2 = _special_pairs(shape, seed=depth)
    ref = _nt(depth)(x1, x2)
    out = _mine(depth)(x1, x2)
    assert out.shape == (3, 4) and out.dtype == jnp.float64
    assert _rel(out, ref) <= RTOL


@pytest.mark.parametrize("shape", [MNIST, CIFAR], ids=["mnist", "cifar"])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_equals_neural_tangents_random_images(shape, depth):
    x1, x2 = _images(4, shape, seed=10 + depth), _images(5, shape, seed=20 + depth)
    assert _rel(_mine(depth)(x1, x2), _nt(depth)(x1, x2)) <= RTOL


@pytest.mark.parametrize("depth", [1, 2])
def test_nngp_equals_neural_tangents(depth):
    x1, x2 = _special_pairs(SMALL)
    out = _mine(depth, "nngp")(x1, x2)
    assert _rel(out, _nt(depth, "nngp")(x1, x2)) <= RTOL


@pytest.mark.parametrize(
    "w_std, b_std, f", [(1.3, 0.5, 3), (math.sqrt(2.0), 0.1, 2), (1.0, 0.0, 5)]
)
def test_other_hyperparameters_equal_neural_tangents(w_std, b_std, f):
    x1, x2 = _images(3, (7, 6, 2), seed=3), _images(2, (7, 6, 2), seed=4)
    out = _mine(2, "ntk", w_std, b_std, f)(x1, x2)
    assert _rel(out, _nt(2, "ntk", w_std, b_std, f)(x1, x2)) <= RTOL


@pytest.mark.parametrize("get", ["ntk", "nngp"])
@pytest.mark.parametrize("depth", [1, 3])
def test_equals_long_double_reference_incl_identical_images(depth, get):
    """Non-dyadic 3-channel images incl. x1 == x2: exact (θ = 0) here, while
    neural-tangents is ~1e-10 off on the identical pair."""
    u = _images(3, SMALL, seed=7)
    x1, x2 = u[:2], np.stack([u[0], u[2], 0.5 * u[1]])
    out = _mine(depth, get)(x1, x2)
    assert _rel(out, _reference(x1, x2, depth, get)) <= 1e-14
    assert _rel(out, _nt(depth, get)(x1, x2)) <= 1e-8


@pytest.mark.parametrize("depth", [1, 2])
def test_real_mnist_and_cifar(shared_data, depth):
    """Real digits share zero backgrounds (exactly parallel pixels) and CIFAR
    images are 3-channel k/255 pixels: equal to op-by-op neural-tangents, and on
    the CIFAR diagonal (where neural-tangents is ~1e-9 off) to the long-double
    reference."""
    from ntkadv.data import SOURCES, read_cifar_batch, read_mnist_idx

    name = "t10k-images-idx3-ubyte.gz"
    mnist = read_mnist_idx(shared_data / "mnist" / name, SOURCES["mnist"].files[name])
    x = mnist[:4] / 255.0
    assert _rel(_mine(depth)(x, x), _nt(depth)(x, x)) <= RTOL
    batch = shared_data / "cifar10" / "cifar-10-batches-py" / "test_batch"
    md5 = SOURCES["cifar10"].files["test_batch"]
    x = read_cifar_batch(batch, md5).images[:4] / 255.0
    out = np.asarray(_mine(depth)(x, x))
    off = ~np.eye(4, dtype=bool)
    ref = np.asarray(_nt(depth)(x, x))
    assert np.max(np.abs(out - ref)[off]) <= RTOL * np.max(np.abs(ref))
    assert _rel(np.diag(out), np.diag(_reference(x, x, depth))) <= 1e-14


def test_symmetric_and_blocking_invariant():
    x = _images(7, (6, 5, 2), seed=5)
    y = _images(11, (6, 5, 2), seed=6)
    full = conv_ntk.conv_ntk_fn(2, block_pairs=10**9)
    gram = np.asarray(full(x, x))
    np.testing.assert_allclose(gram, gram.T, rtol=1e-14, atol=0)
    ref = np.asarray(full(x, y))
    # row blocks only (rows = 11 // 11 .. ), row and column blocks, one pair per step
    for block_pairs in (1, 3, 11, 12, 30, 77):
        out = jax.jit(conv_ntk.conv_ntk_fn(2, block_pairs=block_pairs))(x, y)
        assert out.shape == (7, 11)
        assert _rel(out, ref) <= 1e-14


def test_vmap_of_pair_kernel_equals_block():
    x, y = _images(3, SMALL, seed=8), _images(4, SMALL, seed=9)
    kernel_fn = conv_ntk.conv_ntk_fn(2)
    pair = lambda a, b: kernel_fn(a[None], b[None])[0, 0]  # noqa: E731
    out = jax.jit(jax.vmap(jax.vmap(pair, (None, 0)), (0, None)))(x, y)
    assert _rel(out, kernel_fn(x, y)) <= 1e-14


def test_argument_errors():
    with pytest.raises(ValueError, match="depth"):
        conv_ntk.conv_ntk_fn(0)
    with pytest.raises(ValueError, match="get"):
        conv_ntk.conv_ntk_fn(1, get="ntk+nngp")


# --- (2) arctan2 / arccos ------------------------------------------------------------


def test_arccos_dense_grid_endpoints_and_tiny_angles():
    grid = np.linspace(-1.0, 1.0, 400_001)
    tiny = np.cos(np.geomspace(1e-7, 1e-1, 2001))  # cosines of small angles
    near = 1.0 - np.geomspace(2.0**-52, 1e-3, 2001)  # c within a few ulp of 1
    c = np.concatenate([grid, tiny, near, -near, [-1.0, 1.0, 0.0, 0.5, -0.5]])
    out = np.asarray(jax.jit(conv_ops.arccos)(jnp.asarray(c)))
    ref = np.arccos(c.astype(np.longdouble))
    rel = np.abs(out - ref) / np.maximum(ref, np.finfo(np.float64).tiny)
    assert np.max(rel[ref > 0]) <= 1e-14
    assert out[c == 1.0].max() == 0.0
    assert out[c == -1.0].min() == np.float64(np.pi)


def test_arctan2_nonneg_ratios_quadrants_and_zero():
    rng = np.random.default_rng(0)
    ratio = np.concatenate([np.geomspace(1e-300, 1e300, 20001), [1.0, _tan8()]])
    scale = rng.uniform(1e-3, 1e3, size=ratio.size)
    y = ratio * scale
    for x in (scale, -scale):  # both half planes: θ ∈ (0, π/2) and (π/2, π)
        out = np.asarray(
            jax.jit(conv_ops.arctan2_nonneg)(jnp.asarray(y), jnp.asarray(x))
        )
        ref = np.arctan2(y.astype(np.longdouble), x.astype(np.longdouble))
        assert np.max(np.abs(out - ref) / ref) <= 1e-15
    edge = conv_ops.arctan2_nonneg(
        jnp.array([0.0, 0.0, 1.0, 0.0]), jnp.array([1.0, -1.0, 0.0, 0.0])
    )
    np.testing.assert_array_equal(edge, [0.0, np.pi, np.pi / 2, np.pi / 2])


def _tan8() -> float:
    return math.tan(math.pi / 8)


def test_arccos_float32():
    c = np.linspace(-1.0, 1.0, 100_001, dtype=np.float32)
    out = np.asarray(jax.jit(conv_ops.arccos)(jnp.asarray(c)))
    assert out.dtype == np.float32
    ref = np.arccos(c.astype(np.float64))
    # relative to the angle, allowing one float32 ulp of the cosine near c = ±1
    err = np.abs(out - ref) / (ref + 1e-3)
    assert np.max(err) <= 1e-6


# --- (3) input gradients -------------------------------------------------------------


@pytest.mark.parametrize(
    "shape, depth",
    [(SMALL, 1), (SMALL, 2), (SMALL, 3), (MNIST, 1), (MNIST, 2)],
    ids=["8x8x3-1", "8x8x3-2", "8x8x3-3", "mnist-1", "mnist-2"],
)
def test_input_gradient_equals_neural_tangents(shape, depth):
    u = _images(3, shape, seed=30 + depth)
    g_nt, g_me = _pair_grad(_nt(depth), jit=False), _pair_grad(_mine(depth))
    for a, b in [(u[0], u[1]), (np.zeros(shape), u[1]), (u[2], 2 * u[2])]:
        ref = g_nt(a, b)
        out = g_me(a, b)
        assert bool(jnp.all(jnp.isfinite(out)))
        assert _rel(out, ref) <= GRAD_RTOL


@pytest.mark.parametrize("shape", [SMALL, MNIST], ids=["8x8x3", "mnist"])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_input_gradient_at_coincident_points(shape, depth):
    """x1 == x2: neural-tangents' zero-angular-part gradient, which by symmetry is
    half the gradient of the smooth diagonal x -> Θ(x, x)."""
    x = _images(1, shape, seed=40 + depth, dyadic=True)[0]
    g = _pair_grad(_mine(depth))(x, x)
    assert bool(jnp.all(jnp.isfinite(g)))
    assert _rel(g, _pair_grad(_nt(depth), jit=False)(x, x)) <= GRAD_RTOL
    diag = jax.grad(lambda a: _mine(depth)(a[None], a[None])[0, 0])(x)
    assert _rel(g, 0.5 * diag) <= 1e-12


def test_gradient_finite_without_bias_at_zero_images():
    """b_std = 0: zero patches give s = K = 0 (angle π/2 by neural-tangents'
    fill value); value and gradient stay finite and equal to neural-tangents."""
    x = _images(2, SMALL, seed=50)
    x[:, :4] = 0.0  # zero rows: zero patches in both images
    kf_nt, kf_me = _nt(2, "ntk", W_STD, 0.0), _mine(2, "ntk", W_STD, 0.0)
    assert _rel(kf_me(x[:1], x[1:]), kf_nt(x[:1], x[1:])) <= RTOL
    g_me = _pair_grad(kf_me)(x[0], x[1])
    assert bool(jnp.all(jnp.isfinite(g_me)))
    assert _rel(g_me, _pair_grad(kf_nt, jit=False)(x[0], x[1])) <= GRAD_RTOL


def test_forward_mode_and_dense_tile():
    x, y = _images(2, SMALL, seed=60), _images(3, SMALL, seed=61)
    kernel_fn = conv_ntk.conv_ntk_fn(2)
    v = _images(1, SMALL, seed=62)[0]
    pair = lambda a: kernel_fn(a[None], y[:1])[0, 0]  # noqa: E731
    _, jvp = jax.jvp(pair, (x[0],), (v,))
    grad = jax.grad(pair)(x[0])
    assert abs(float(jvp) - float(jnp.vdot(grad, v))) <= 1e-12 * abs(float(jvp))
    tile_me = jax.jit(jacobians.dense_tile_fn(kernel_fn))(x, y)
    tile_nt = jacobians.dense_tile_fn(_nt(2))(x, y)
    assert tile_me.shape == (2, 3, int(np.prod(SMALL)))
    assert _rel(tile_me, tile_nt) <= GRAD_RTOL


@pytest.mark.parametrize("block_pairs", [2, 10**9], ids=["row-and-col-maps", "row-map"])
def test_vjp_of_mapped_rows_equals_neural_tangents(block_pairs):
    """Reverse mode through several kernel rows (the PGD steps' `lax.map` path,
    whose blocks are rematerialised) equals neural-tangents' VJP."""
    x, xt = _images(3, SMALL, seed=63), _images(5, SMALL, seed=64)
    c = np.random.default_rng(65).normal(size=(5,))

    def loss(kernel_fn):
        return jax.grad(lambda a: jnp.sum(jnp.tanh(kernel_fn(a, xt) @ c)))

    out = jax.jit(loss(conv_ntk.conv_ntk_fn(2, block_pairs=block_pairs)))(x)
    assert _rel(out, loss(_nt(2))(x)) <= GRAD_RTOL


def test_reverse_mode_memory_does_not_grow_with_rows():
    """The scan behind `lax.map` keeps only each step's inputs (`_remat_block`):
    XLA's temp buffer of a VJP through 8 rows x 300 training images is below twice
    that of one row (it stacked every row's residual maps before: 8x)."""
    kernel_fn = conv_ntk.conv_ntk_fn(2)
    xt = jax.ShapeDtypeStruct((300, *CIFAR), jnp.float64)

    def temp(rows: int) -> int:
        x = jax.ShapeDtypeStruct((rows, *CIFAR), jnp.float64)
        grad = jax.grad(lambda a, b: jnp.sum(kernel_fn(a, b)))
        return jax.jit(grad).lower(x, xt).compile().memory_analysis().temp_size_in_bytes

    assert temp(8) < 2 * temp(1)


# --- (4) jit, (5) float32 --------------------------------------------------------


@pytest.mark.parametrize("get", ["ntk", "nngp"])
def test_jitted_equals_unjitted(get):
    x1, x2 = _special_pairs(SMALL, seed=70)
    kernel_fn = conv_ntk.conv_ntk_fn(2, get=get, block_pairs=2)
    assert _rel(jax.jit(kernel_fn)(x1, x2), kernel_fn(x1, x2)) <= 1e-14


@pytest.mark.parametrize("shape", [MNIST, CIFAR], ids=["mnist", "cifar"])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_float32_inputs(shape, depth):
    x1, x2 = _special_pairs(shape, seed=80 + depth)
    ref = _nt(depth)(x1, x2)  # neural-tangents computes in float64
    out = _mine(depth)(x1.astype(np.float32), x2.astype(np.float32))
    assert out.dtype == jnp.float32
    assert _rel(out, ref) <= 1e-5
    g = _pair_grad(_mine(depth))(x1[0].astype(np.float32), x2[2].astype(np.float32))
    assert g.dtype == jnp.float32
    assert _rel(g, _pair_grad(_nt(depth), jit=False)(x1[0], x2[2])) <= 1e-4
