"""Layer widths of the supp. App. E networks (dependency-free; `models` builds them).

Kept apart from the flax modules so that resource estimates (`ntkadv.sizing`) can
count parameters without importing jax or flax.
"""

from __future__ import annotations

#: model name -> (conv widths before the first 2x2 pool, after it, dense widths).
LAYERS: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]] = {
    "cnn": ((32,), (64,), (256,)),
    "cnn_mega": ((32, 32), (64, 64, 128, 128), ()),
}
#: model name -> the pooling after each conv block.
POOLS: dict[str, tuple[str, str]] = {"cnn": ("avg", "avg"), "cnn_mega": ("max", "avg")}
KERNEL = 3  # every conv is 3 x 3, SAME padding


def parameter_count(model: str, input_shape: tuple[int, int, int], classes: int) -> int:
    """Number of parameters (weights and biases) of `model` on `input_shape` images.

    Args:
        model: 'cnn' or 'cnn_mega'.
        input_shape: (H, W, C).
        classes: logits.
    """
    if model not in LAYERS:
        raise ValueError(f"unknown model '{model}'; known: {sorted(LAYERS)}")
    first, second, dense = LAYERS[model]
    h, w, c = input_shape
    total, cin = 0, c
    for width in (*first, *second):
        total += KERNEL * KERNEL * cin * width + width
        cin = width
    features = (h // 2 // 2) * (w // 2 // 2) * cin  # two 2x2 / stride-2 pools
    for width in (*dense, classes):
        total += features * width + width
        features = width
    return total
