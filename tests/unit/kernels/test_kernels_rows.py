"""One-pass weighted kernel rows and their input gradients (`ntkadv.kernels.rows`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkadv.attacks.pgd import rows_loss_gradient_fn
from ntkadv.kernels import analytic as kernels
from ntkadv.kernels import conv as conv_ntk
from ntkadv.kernels.rows import prefers_one_pass, weighted_rows_value_and_grad_fn

SMALL = (8, 8, 3)


def _data(b: int, n: int, seed: int):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.uniform(size=(b, *SMALL)))
    xt = jnp.asarray(rng.uniform(size=(n, *SMALL)))
    w = jnp.asarray(rng.standard_normal((b, n)))
    return x, xt, w


@pytest.mark.parametrize("block", [4, 5, 13])  # 13 = n: one block; 4, 5: padded
@pytest.mark.parametrize("depth", [1, 2])
def test_value_and_grad_equal_the_rows_and_their_vjp(block, depth):
    kernel_fn = conv_ntk.conv_ntk_fn(depth)
    x, xt, w = _data(3, 13, seed=block + depth)
    f, g = jax.jit(weighted_rows_value_and_grad_fn(kernel_fn, block))(x, xt, w)
    f_ref = jnp.sum(kernel_fn(x, xt) * w, axis=1)
    g_ref = jax.grad(lambda z: jnp.sum(kernel_fn(z, xt) * w))(x)
    assert f.shape == (3,) and g.shape == x.shape
    np.testing.assert_allclose(f, f_ref, rtol=1e-13)
    np.testing.assert_allclose(
        g, g_ref, rtol=1e-12, atol=1e-14 * float(jnp.abs(g_ref).max())
    )


def test_only_the_conv_kernel_prefers_one_pass():
    assert prefers_one_pass(conv_ntk.conv_ntk_fn(1))
    assert prefers_one_pass(kernels.kernel_fn_from_spec({"family": "conv", "depth": 1}))
    assert not prefers_one_pass(
        kernels.kernel_fn_from_spec({"family": "fc", "depth": 2})
    )


def test_binary_pgd_gradient_one_pass_equals_the_vjp():
    """rows_loss_gradient_fn (binary, CONV: one pass) == jax.grad of the loss of
    each row's machine (the multiclass path's VJP, written out)."""
    from ntkadv.losses import loss

    kernel_fn = conv_ntk.conv_ntk_fn(2)
    x, xt, _ = _data(4, 9, seed=3)
    rng = np.random.default_rng(4)
    c_all = jnp.asarray(rng.standard_normal((9, 2)))  # two machines, k = 1
    cidx = jnp.asarray([0, 1, 1, 0])
    y = jnp.asarray([[1.0], [-1.0], [1.0], [-1.0]])
    xf = x.reshape(4, -1)
    got = jax.jit(rows_loss_gradient_fn(kernel_fn, "binary", SMALL))(
        xf, y, cidx, xt, c_all
    )

    def total(z):
        rows = kernel_fn(z.reshape(x.shape), xt) @ c_all  # (4, 2)
        f = jnp.take_along_axis(rows, cidx[:, None], axis=1)
        return jnp.sum(loss(f, y, "binary"))

    ref = jax.grad(total)(xf)
    np.testing.assert_allclose(
        got, ref, rtol=1e-12, atol=1e-14 * float(jnp.abs(ref).max())
    )
