"""Tests of ntkadv.dynamics.models and .architectures: the CNNs of supp. App. E."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkadv.dynamics import architectures, models

SHAPES = {"cnn": (28, 28, 1), "cnn_mega": (32, 32, 3)}


def _expected_param_count(name: str, num_classes: int) -> int:
    """Parameter count from the layer list of supp. App. E, by hand."""

    def conv(c_in, c_out):
        return 3 * 3 * c_in * c_out + c_out

    def dense(d_in, d_out):
        return d_in * d_out + d_out

    if name == "cnn":  # 28 -> pool 14 -> pool 7
        hidden = conv(1, 32) + conv(32, 64) + dense(7 * 7 * 64, 256)
        return hidden + dense(256, num_classes)
    # 32 -> max pool 16 -> avg pool 8; 6 convs of widths 32, 32, 64, 64, 128, 128
    widths = [3, 32, 32, 64, 64, 128, 128]
    convs = sum(conv(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
    return convs + dense(8 * 8 * 128, num_classes)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("name", ["cnn", "cnn_mega"])
def test_output_shape_and_finite(name, batch):
    model = models.build_model(name)
    params = models.init_params(model, jax.random.PRNGKey(0), SHAPES[name])
    x = jax.random.uniform(jax.random.PRNGKey(1), (batch, *SHAPES[name]))
    out = models.apply_fn_for(model)(params, x)
    chex.assert_shape(out, (batch, 10))
    chex.assert_tree_all_finite(out)


@pytest.mark.parametrize("num_classes", [10, 4])
@pytest.mark.parametrize("name", ["cnn", "cnn_mega"])
def test_parameter_count_matches_architecture(name, num_classes):
    model = models.build_model(name, num_classes)
    params = models.init_params(model, jax.random.PRNGKey(0), SHAPES[name])
    count = sum(leaf.size for leaf in jax.tree_util.tree_leaves(params))
    assert count == _expected_param_count(name, num_classes)


@pytest.mark.parametrize("num_classes", [10, 4])
@pytest.mark.parametrize(
    ("name", "paper_count"), [("cnn", 824_458), ("cnn_mega", 368_938)]
)
def test_architecture_parameter_count_equals_flax(name, paper_count, num_classes):
    """`parameter_count` (no jax, for resource estimates) == the flax model's."""
    model = models.build_model(name, num_classes)
    params = models.init_params(model, jax.random.PRNGKey(0), SHAPES[name])
    count = sum(leaf.size for leaf in jax.tree_util.tree_leaves(params))
    assert architectures.parameter_count(name, SHAPES[name], num_classes) == count
    if num_classes == 10:
        assert count == paper_count
    with pytest.raises(ValueError, match="unknown model"):
        architectures.parameter_count("resnet", SHAPES[name], num_classes)


def test_cnn_mega_pools_once_max_then_avg():
    """Flatten sees 8x8x128 after MaxPool(2) then AvgPool(2) on a 32x32 image."""
    model = models.build_model("cnn_mega")
    params = models.init_params(model, jax.random.PRNGKey(0), SHAPES["cnn_mega"])
    chex.assert_shape(params["Dense_0"]["kernel"], (8 * 8 * 128, 10))
    assert len([k for k in params if k.startswith("Conv_")]) == 6


@pytest.mark.parametrize("name", ["cnn", "cnn_mega"])
def test_init_is_a_function_of_the_key(name):
    model = models.build_model(name)
    a = models.init_params(model, jax.random.PRNGKey(0), SHAPES[name])
    b = models.init_params(model, jax.random.PRNGKey(0), SHAPES[name])
    c = models.init_params(model, jax.random.PRNGKey(1), SHAPES[name])
    chex.assert_trees_all_equal(a, b)
    assert not np.array_equal(a["Conv_0"]["kernel"], c["Conv_0"]["kernel"])
    # flax defaults: zero biases, float32 parameters
    assert jnp.all(a["Conv_0"]["bias"] == 0)
    assert a["Conv_0"]["kernel"].dtype == jnp.float32


def _conv_relu(x, layer):
    y = jax.lax.conv_general_dilated(
        x, layer["kernel"], (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    return jnp.maximum(y + layer["bias"][None, None, None, :], 0.0)


def _dense(x, layer):
    return x @ layer["kernel"] + layer["bias"][None, :]


def _pool(x, reduce):
    n, h, w, c = x.shape
    return reduce(x.reshape(n, h // 2, 2, w // 2, 2, c), axis=(2, 4))


def _reference_forward(name, params, x):
    """The layer list of supp. App. E written out with lax.conv and reshapes."""
    if name == "cnn":
        x = _pool(_conv_relu(x, params["Conv_0"]), jnp.mean)
        x = _pool(_conv_relu(x, params["Conv_1"]), jnp.mean)
        x = x.reshape(x.shape[0], -1)
        x = jnp.maximum(_dense(x, params["Dense_0"]), 0.0)
        return _dense(x, params["Dense_1"])
    x = _conv_relu(_conv_relu(x, params["Conv_0"]), params["Conv_1"])
    x = _pool(x, jnp.max)
    for i in range(2, 6):
        x = _conv_relu(x, params[f"Conv_{i}"])
    x = _pool(x, jnp.mean).reshape(x.shape[0], -1)
    return _dense(x, params["Dense_0"])


@pytest.mark.parametrize("name", ["cnn", "cnn_mega"])
def test_forward_matches_hand_written_layers(name):
    model = models.build_model(name)
    params = models.init_params(model, jax.random.PRNGKey(3), SHAPES[name])
    # non-zero biases so that their placement is checked too
    params = jax.tree_util.tree_map(lambda p: p + 0.05 if p.ndim == 1 else p, params)
    x = jax.random.uniform(jax.random.PRNGKey(4), (2, *SHAPES[name]), jnp.float32)
    np.testing.assert_allclose(
        models.apply_fn_for(model)(params, x),
        _reference_forward(name, params, x),
        rtol=1e-4,
        atol=1e-5,
    )


def test_unknown_model_raises():
    with pytest.raises(ValueError, match="unknown model"):
        models.build_model("resnet")
