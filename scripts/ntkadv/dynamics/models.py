"""Finite convolutional networks of the kernel-dynamics study (Sec. 5, supp. App. E).

Both models are flax ``linen`` modules that map images ``(n, H, W, C)`` in [0, 1]
to ``(n, num_classes)`` logits. They follow the authors' ``robust_train_CNN.py``
(flax defaults: SAME padding, LeCun-normal kernels, zero biases, no batch norm):

* :class:`CNN` (MNIST, supp. App. E): Conv 3x3/32, ReLU, AvgPool 2x2/2; Conv 3x3/64,
  ReLU, AvgPool 2x2/2; Flatten; Dense 256; ReLU; Dense 10.
* :class:`CNNMega` (CIFAR-10, ``CNN_mega`` in the authors' code): Conv 32, Conv 32,
  MaxPool 2x2/2; Conv 64, Conv 64, Conv 128, Conv 128, AvgPool 2x2/2; Flatten;
  Dense 10 (every conv is 3x3, SAME, followed by ReLU).

:func:`apply_fn_for` returns the pure ``f(params, x)`` used by neural-tangents
(``nt.empirical_ntk_fn``, ``nt.linearize``) and by the training code.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from ntkadv.dynamics.architectures import KERNEL, LAYERS, POOLS
from ntkadv.typing import ApplyFn

_POOL = {"avg": nn.avg_pool, "max": nn.max_pool}


def _forward(name: str, x: jax.Array, num_classes: int) -> jax.Array:
    """Conv blocks, pools and dense layers of `architectures.LAYERS[name]`."""
    first, second, dense = LAYERS[name]
    for block, pool in zip((first, second), POOLS[name], strict=True):
        for width in block:
            x = nn.relu(nn.Conv(features=width, kernel_size=(KERNEL, KERNEL))(x))
        x = _POOL[pool](x, window_shape=(2, 2), strides=(2, 2))
    x = x.reshape((x.shape[0], -1))
    for width in dense:
        x = nn.relu(nn.Dense(features=width)(x))
    return nn.Dense(features=num_classes)(x)


class CNN(nn.Module):
    """MNIST network of supp. App. E (three layers of width 32, 64, 256)."""

    num_classes: int = 10

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Logits ``(n, num_classes)`` of images ``x`` of shape ``(n, H, W, C)``."""
        return _forward("cnn", x, self.num_classes)


class CNNMega(nn.Module):
    """CIFAR-10 network of supp. App. E (``CNN_mega``: six 3x3 convs, two pools)."""

    num_classes: int = 10

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Logits ``(n, num_classes)`` of images ``x`` of shape ``(n, H, W, C)``."""
        return _forward("cnn_mega", x, self.num_classes)


MODELS: dict[str, type[nn.Module]] = {"cnn": CNN, "cnn_mega": CNNMega}


def build_model(name: str, num_classes: int = 10) -> nn.Module:
    """The network called `name` ('cnn' for MNIST, 'cnn_mega' for CIFAR-10)."""
    try:
        return MODELS[name](num_classes=num_classes)
    except KeyError:
        raise ValueError(f"unknown model '{name}'; known: {sorted(MODELS)}") from None


def apply_fn_for(model: nn.Module) -> ApplyFn:
    """The pure function ``f(params, x) -> (n, num_classes)`` of a linen module."""

    def apply_fn(params: dict, x: jax.Array) -> jax.Array:
        return model.apply({"params": params}, x)

    return apply_fn


def init_params(model: nn.Module, key: jax.Array, input_shape: tuple[int, ...]):
    """Parameters of `model` drawn with `key` for single images of `input_shape`.

    Args:
        model: the linen module.
        key: PRNG key (the authors use ``PRNGKey(0)``).
        input_shape: ``(H, W, C)`` of one image.

    Returns:
        The ``params`` collection (a pytree of float32 arrays).
    """
    dummy = jnp.zeros((1, *input_shape), dtype=jnp.float32)
    return model.init(key, dummy)["params"]
