"""Tests of ntkadv.dynamics.entk: every eNTK implementation equals implementation 1.

Both dynamics CNNs at their real input shapes (28x28x1, 32x32x3), float32 params,
B = 3 (and 2 for a rectangular x1 / x2 pair). conftest turns x64 on; all arrays
here are explicitly float32, as in the dynamics stage.
"""

from __future__ import annotations

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import neural_tangents as nt
import numpy as np
import pytest

from ntkadv.dynamics import entk, models

SHAPES = {"cnn": (28, 28, 1), "cnn_mega": (32, 32, 3)}
CONCRETE = [i for i in entk.IMPLEMENTATIONS if i != "auto"]
RTOL = 1e-5  # relative Frobenius error allowed against implementation 1


def _setup(name: str, n: int = 3, seed: int = 0):
    model = models.build_model(name)
    f = models.apply_fn_for(model)
    params = models.init_params(model, jax.random.PRNGKey(seed), SHAPES[name])
    key1, key2 = jax.random.split(jax.random.PRNGKey(seed + 1))
    x1 = jax.random.uniform(key1, (n, *SHAPES[name]), dtype=jnp.float32)
    x2 = jax.random.uniform(key2, (n - 1, *SHAPES[name]), dtype=jnp.float32)
    return f, params, x1, x2


@pytest.fixture(scope="module", params=["cnn", "cnn_mega"])
def case(request):
    """A model, its float32 params, inputs and the implementation-1 references."""
    f, params, x1, x2 = _setup(request.param)
    ref = jax.jit(
        nt.empirical_ntk_fn(
            f,
            trace_axes=(),
            vmap_axes=0,
            implementation=nt.NtkImplementation.JACOBIAN_CONTRACTION,
        )
    )
    return {
        "name": request.param,
        "f": f,
        "params": params,
        "x1": x1,
        "x2": x2,
        "ref_11": np.asarray(ref(x1, None, params), np.float64),
        "ref_12": np.asarray(ref(x1, x2, params), np.float64),
    }


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_parameter_counts_of_the_two_cnns():
    for name, expected in [("cnn", 824_458), ("cnn_mega", 368_938)]:
        model = models.build_model(name)
        shapes = jax.eval_shape(
            lambda m=model, s=SHAPES[name]: models.init_params(
                m, jax.random.PRNGKey(0), s
            )
        )
        assert sum(leaf.size for leaf in jax.tree_util.tree_leaves(shapes)) == expected


def test_structured_derivatives_shim_applies_on_pinned_jax():
    assert jax.__version__ == "0.4.35", "shim written for jax 0.4.35; re-check it"
    entk.enable_structured_derivatives()
    entk.enable_structured_derivatives()  # idempotent
    from jax._src import source_info_util

    assert jax.interpreters.ad.source_info_util is source_info_util
    assert jax.interpreters.ad.config is jax.config


@pytest.mark.parametrize("implementation", [*CONCRETE, "auto"])
def test_implementation_matches_jacobian_contraction(case, implementation):
    kfn = entk.empirical_ntk_fn(case["f"], implementation)
    n1, n2 = len(case["x1"]), len(case["x2"])
    k11 = kfn(case["x1"], None, case["params"])
    k12 = kfn(case["x1"], case["x2"], case["params"])
    chex.assert_shape(k11, (n1, n1, 10, 10))
    chex.assert_shape(k12, (n1, n2, 10, 10))
    chex.assert_tree_all_finite((k11, k12))
    assert k11.dtype == jnp.float32
    assert _rel(k11, case["ref_11"]) <= RTOL
    assert _rel(k12, case["ref_12"]) <= RTOL
    # x2 = None is the same kernel as x2 = x1
    k_same = kfn(case["x1"], case["x1"], case["params"])
    assert _rel(k11, k_same) <= RTOL


@pytest.mark.parametrize("implementation", ["layerwise", "structured_derivatives"])
def test_kernel_matrix_is_symmetric_psd(case, implementation):
    ntk = entk.empirical_ntk_fn(case["f"], implementation)(
        case["x1"], None, case["params"]
    )
    n = len(case["x1"])
    m = np.asarray(ntk, np.float64).transpose(0, 2, 1, 3).reshape(n * 10, n * 10)
    np.testing.assert_allclose(m, m.T, rtol=1e-5, atol=1e-5 * np.abs(m).max())
    eigvals = np.linalg.eigvalsh((m + m.T) / 2)
    assert eigvals.min() >= -1e-5 * eigvals.max()


def test_block_tiles_match_untiled(case):
    x = jnp.concatenate([case["x1"], case["x1"][:1]])  # n = 4, tiles of 2
    full = entk.empirical_ntk_fn(case["f"], "layerwise")(x, None, case["params"])
    tiled = entk.empirical_ntk_fn(case["f"], "layerwise", block=2)(
        x, None, case["params"]
    )
    assert _rel(tiled, full) <= RTOL


def test_auto_resolves_to_layerwise_on_the_cnns(case):
    resolved = entk.resolve_implementation(
        "auto", case["f"], case["params"], case["x1"]
    )
    assert resolved == "layerwise"


def test_layerwise_under_x64_params_is_float64_exact():
    """float64 params: layerwise agrees with impl. 1 to float64 round-off."""
    f, params, x1, _ = _setup("cnn", n=2)
    params = jax.tree_util.tree_map(lambda p: p.astype(jnp.float64), params)
    x1 = x1.astype(jnp.float64)
    ref = nt.empirical_ntk_fn(f, trace_axes=(), vmap_axes=0)(x1, None, params)
    got = entk.empirical_ntk_fn(f, "layerwise")(x1, None, params)
    assert got.dtype == jnp.float64
    assert _rel(got, ref) <= 1e-12


class _WithLayerNorm(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.Dense(4)(x.reshape((x.shape[0], -1)))
        return nn.Dense(10)(nn.LayerNorm()(x))


class _Shared(nn.Module):
    @nn.compact
    def __call__(self, x):
        dense = nn.Dense(6)
        x = x.reshape((x.shape[0], -1))[:, :6]
        return nn.Dense(10)(dense(nn.relu(dense(x))))


@pytest.mark.parametrize("module", [_WithLayerNorm(), _Shared()])
def test_layerwise_refuses_unsupported_networks_and_auto_falls_back(module):
    x = jax.random.uniform(jax.random.PRNGKey(0), (3, 4, 4, 1), dtype=jnp.float32)
    params = module.init(jax.random.PRNGKey(1), x)["params"]
    f = models.apply_fn_for(module)
    assert not entk.layerwise_supported(f, params, x)
    with pytest.raises(NotImplementedError):
        entk.empirical_ntk_fn(f, "layerwise")(x, None, params)
    assert entk.resolve_implementation("auto", f, params, x) == (
        "structured_derivatives"
    )
    ref = nt.empirical_ntk_fn(f, trace_axes=(), vmap_axes=0)(x, None, params)
    assert _rel(entk.empirical_ntk_fn(f)(x, None, params), ref) <= RTOL


def test_unknown_implementation_is_rejected():
    with pytest.raises(ValueError, match="unknown eNTK implementation"):
        entk.empirical_ntk_fn(lambda p, x: x, "fastest")
