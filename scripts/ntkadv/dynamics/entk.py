"""Fast exact empirical NTK of the dynamics CNNs (Sec. 5, supp. App. E).

The eNTK of a network ``f(params, x) -> (n, k)`` is

    ntk[i, j, a, b] = <d f_a(x_i) / d theta, d f_b(x_j) / d theta>,

the layout of ``nt.empirical_ntk_fn(f, trace_axes=(), vmap_axes=0)``, shape
``(n1, n2, k, k)``. :func:`empirical_ntk_fn` returns it from one of five exact
implementations (all agree to float32 round-off, see tests/unit/test_entk.py):

* ``'jacobian_contraction'``, ``'ntk_vector_products'``,
  ``'structured_derivatives'``: neural-tangents' implementations 1, 2, 3. The
  third needs :func:`enable_structured_derivatives` on jax 0.4.35 (called here).
* ``'jacobian_gemm'``: per-example Jacobians ``jax.vmap(jax.jacrev(f))``, one
  ``J1 J2^T`` GEMM per parameter leaf (no concatenated ``(k n, P)`` copy).
* ``'layerwise'``: written here for networks built of flax ``nn.Dense`` and
  ``nn.Conv`` layers (every parameter of the model must belong to one of them).
  One forward pass records every layer's input; one backward pass per logit
  (``k`` cotangents, vmapped) gives the derivative of logit a w.r.t. every layer
  output. The per-example parameter gradient of a layer is then the outer product
  of its (bias-augmented) input with that cotangent, summed over spatial positions:

  - a Dense layer on ``(n, d_in)`` never materialises it: its kernel block is
    ``(g_ia . g_jb) (x_i . x_j + 1)`` (one ``(k n1, k n2)`` Gram of the
    ``d_out``-dim cotangents times an ``(n1, n2)`` Gram of the inputs);
  - a Conv (or a Dense on inputs with extra axes) materialises the per-example
    gradient ``sum_s patch_i(s) (x) g_ia(s)`` as ``(k, n, (d_in + 1) d_out)`` by
    one batched GEMM over positions and contracts it with one GEMM, layer by layer
    (peak memory is one layer's gradient, not the whole ``(k n, P)`` Jacobian).

  The parameter coordinates of a Conv's im2col patches are ordered differently
  from flax's kernel layout; a Gram matrix does not depend on that order.

``'auto'`` is ``'layerwise'`` when the network is supported (the two CNNs of
:mod:`dynamics.models` are), else ``'structured_derivatives'``. The choice rests on
benchmarks/bench_entk.py (jax 0.4.35, XLA:CPU on one thread, float32, best-of-3
CPU seconds, x2=None; impl. 1 = 'jacobian_contraction'):

============  ===  =======  =======  ==========  ========  =========  ========
model         B    impl. 1  ntk_vp   struct_der  jac_gemm  layerwise  roofline
============  ===  =======  =======  ==========  ========  =========  ========
CNN (MNIST)   10   0.76 s   0.81 s   0.080 s     0.78 s    0.060 s    0.28 s
CNN (MNIST)   20   1.73 s   2.96 s   0.20 s      1.85 s    0.14 s     0.83 s
CNN (MNIST)   50   6.35 s   -        0.55 s      -         0.44 s     4.05 s
CNN (MNIST)   100  -        -        1.12 s      -         0.89 s     -
CNN_mega      10   0.83 s   5.19 s   0.99 s      0.87 s    0.69 s     0.70 s
CNN_mega      25   2.51 s   -        2.59 s      2.45 s    1.96 s     2.04 s
CNN_mega      50   -        -        5.24 s      -         3.97 s     4.33 s
============  ===  =======  =======  ==========  ========  =========  ========

(- = not run: predicted > 10 s, or > 6 GB.) The roofline is "form J once and
contract it": a (10B, P) float32 GEMM plus one vmapped vjp of the 10 logits.
Peak memory (XLA temporaries): MNIST B=50 impl. 1 and jac_gemm 3.2 GB (the
(10B, P) Jacobian, twice), struct_der 142 MB, layerwise 111 MB (B=100: 225 MB);
CIFAR B=25 450 vs 380 MB, B=50 struct_der 903 vs layerwise 759 MB. On the MNIST
CNN 97% of P sits in the first Dense layer, which 'layerwise' (and structured
derivatives) never materialise: both run at 0.1-0.3x the roofline, 12-15x faster
than impl. 1. CNN_mega is conv-bound: every exact method pays the ~10B backward
passes through the convolutions; 'layerwise' runs at the roofline (0.92-0.98x),
1.2-1.3x faster than impl. 1 and structured derivatives.

Precision: all arithmetic is float32 for float32 parameters (as neural-tangents
does); float64 parameters give a float64 kernel. Against a float64 evaluation of
the same float32 network the float32 kernels are off by 1.6e-7 (MNIST, B=10) and
by 1.7e-4 (CIFAR, B=10) for every implementation alike; the CIFAR gap is one ReLU
pre-activation within rounding of 0 (+3e-8 in float32, -6e-8 in float64), a kink
of the network, not accumulation error: without that example the two agree to
7e-8, and a float64 Gram on float32 factors changes nothing. Accumulating in
float64 would therefore buy no accuracy.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp

from ntkadv.compat import import_neural_tangents
from ntkadv.typing import ApplyFn, EntkFn

nt = import_neural_tangents()

Implementation = Literal[
    "auto",
    "jacobian_contraction",
    "ntk_vector_products",
    "structured_derivatives",
    "jacobian_gemm",
    "layerwise",
]

NT_IMPLEMENTATIONS: dict[str, nt.NtkImplementation] = {
    "jacobian_contraction": nt.NtkImplementation.JACOBIAN_CONTRACTION,
    "ntk_vector_products": nt.NtkImplementation.NTK_VECTOR_PRODUCTS,
    "structured_derivatives": nt.NtkImplementation.STRUCTURED_DERIVATIVES,
}
IMPLEMENTATIONS: tuple[str, ...] = (
    "auto",
    *NT_IMPLEMENTATIONS,
    "jacobian_gemm",
    "layerwise",
)


# ------------------------------------------------------------------ compat shim


def enable_structured_derivatives() -> None:
    """Make neural-tangents' STRUCTURED_DERIVATIVES run on jax 0.4.35 (idempotent).

    neural-tangents 0.6.5 reads ``jax.interpreters.ad.source_info_util`` and
    ``jax.interpreters.ad.config``, which jax 0.4.x no longer re-exports there; this
    sets them to ``jax._src.source_info_util`` and ``jax.config``. It touches private
    jax modules: the project pins jax exactly (pyproject.toml: jax==0.4.35), and
    tests/unit/test_entk.py checks that the shim applies and that implementation 3
    then matches implementation 1, so a jax upgrade that breaks it fails loudly.

    Raises:
        RuntimeError: this jax has no ``jax._src.source_info_util`` to alias.
    """
    ad = jax.interpreters.ad
    if not hasattr(ad, "source_info_util"):
        try:
            from jax._src import source_info_util
        except ImportError as err:  # pragma: no cover - only on another jax
            raise RuntimeError(
                f"jax {jax.__version__}: no jax._src.source_info_util; the "
                "structured-derivatives shim was written for jax 0.4.35"
            ) from err
        ad.source_info_util = source_info_util
    if not hasattr(ad, "config"):
        ad.config = jax.config


# ------------------------------------------------------------------ layerwise


@dataclasses.dataclass(frozen=True)
class _Layer:
    """Static description of one recorded Dense/Conv call.

    Attributes:
        kind: 'dense' or 'conv'.
        path: the module's path in the model (to reject shared modules).
        n_params: kernel plus bias entries of the layer.
        use_bias: whether the layer has a bias.
        conv: for 'conv', (kernel_size, strides, padding, input_dilation,
            kernel_dilation) as ``lax.conv_general_dilated`` takes them.
    """

    kind: str
    path: tuple[str, ...]
    n_params: int
    use_bias: bool
    conv: tuple | None = None


def _as_tuple(value: Any, n: int) -> tuple[int, ...]:
    if value is None:
        return (1,) * n
    if isinstance(value, int):
        return (value,) * n
    return tuple(value)


def _describe(module: nn.Module, x: jax.Array) -> _Layer:
    """The :class:`_Layer` of a Dense/Conv `module` called on `x`.

    Raises:
        NotImplementedError: a layer option the layerwise kernel does not model.
    """
    path = tuple(module.path)
    if type(module) is nn.Dense:
        if module.dot_general is not None or module.dot_general_cls is not None:
            raise NotImplementedError(f"Dense {path}: custom dot_general")
        d_in = x.shape[-1]
        n_params = d_in * module.features + module.features * module.use_bias
        return _Layer("dense", path, n_params, module.use_bias)
    nd = len(module.kernel_size)
    if (
        module.feature_group_count != 1
        or module.mask is not None
        or module.conv_general_dilated is not None
        or module.conv_general_dilated_cls is not None
        or x.ndim != nd + 2
    ):
        raise NotImplementedError(
            f"Conv {path}: grouped, masked, custom or unbatched convolutions"
        )
    padding = nn.linear.canonicalize_padding(module.padding, nd)
    if isinstance(padding, str) and padding not in ("SAME", "VALID"):
        raise NotImplementedError(f"Conv {path}: padding {padding!r}")
    if not isinstance(padding, str):
        padding = tuple(tuple(p) for p in padding)
    d_in = x.shape[-1]
    kernel = math.prod(module.kernel_size) * d_in * module.features
    conv = (
        tuple(module.kernel_size),
        _as_tuple(module.strides, nd),
        padding,
        _as_tuple(module.input_dilation, nd),
        _as_tuple(module.kernel_dilation, nd),
    )
    n_params = kernel + module.features * module.use_bias
    return _Layer("conv", path, n_params, module.use_bias, conv)


def _recorded_apply(
    apply_fn: ApplyFn, params: Any, x: jax.Array, eps: Sequence[jax.Array] | None
) -> tuple[jax.Array, list[_Layer], list[jax.Array], list[jax.Array]]:
    """Run `apply_fn` recording every Dense/Conv call; add ``eps[l]`` to outputs.

    Returns:
        ``(logits (n, k), layers, inputs, outputs)``: per recorded call, its
        description, its input and its output (after adding ``eps[l]``).
    """
    layers: list[_Layer] = []
    inputs: list[jax.Array] = []
    outputs: list[jax.Array] = []

    def interceptor(next_fun, args, kwargs, context):
        module = context.module
        if context.method_name != "__call__" or type(module) not in (
            nn.Dense,
            nn.Conv,
        ):
            return next_fun(*args, **kwargs)
        out = next_fun(*args, **kwargs)
        if eps is not None:
            out = out + eps[len(layers)]
        layers.append(_describe(module, args[0]))
        inputs.append(args[0])
        outputs.append(out)
        return out

    with nn.intercept_methods(interceptor):
        logits = apply_fn(params, x)
    return logits, layers, inputs, outputs


def _check_coverage(layers: Sequence[_Layer], params: Any) -> None:
    """Raise unless the recorded layers own all parameters, each used once."""
    total = sum(leaf.size for leaf in jax.tree_util.tree_leaves(params))
    paths = [layer.path for layer in layers]
    if len(set(paths)) != len(paths):
        raise NotImplementedError("layerwise eNTK: a Dense/Conv module is called twice")
    covered = sum(layer.n_params for layer in layers)
    if covered != total:
        raise NotImplementedError(
            f"layerwise eNTK: Dense/Conv layers hold {covered} of the {total} "
            "parameters; other parameterised modules are not supported"
        )


def _patches(layer: _Layer, x: jax.Array) -> jax.Array:
    """Bias-augmented per-position inputs of a layer, ``(n, S, d_in' [+1])``.

    For a Conv: the im2col patches (S = output positions, d_in' = prod(kernel) *
    channels); for a Dense on ``(n, ..., d_in)``: the inputs (S = prod(...)).
    """
    n = x.shape[0]
    if layer.kind == "conv":
        kernel_size, strides, padding, lhs_dil, rhs_dil = layer.conv
        nd = len(kernel_size)
        spec = (0, nd + 1, *range(1, nd + 1))
        numbers = jax.lax.ConvDimensionNumbers(spec, (nd + 1, nd, *range(nd)), spec)
        x = jax.lax.conv_general_dilated_patches(
            x,
            filter_shape=kernel_size,
            window_strides=strides,
            padding=padding,
            lhs_dilation=lhs_dil,
            rhs_dilation=rhs_dil,
            dimension_numbers=numbers,
        )
    x = x.reshape(n, -1, x.shape[-1])
    if layer.use_bias:
        x = jnp.concatenate([x, jnp.ones((*x.shape[:2], 1), x.dtype)], axis=-1)
    return x


def _layer_factors(apply_fn: ApplyFn, params: Any, x: jax.Array) -> list[tuple]:
    """Per-layer factors of the parameter Jacobian of ``apply_fn(params, x)``.

    Returns:
        One entry per Dense/Conv layer: ``('outer', u (n, d_in [+1]), g (k, n,
        d_out))`` with per-example gradient ``u_i (x) g_ia`` for Dense layers on
        ``(n, d_in)``, or ``('dense', w (n k, D))`` with the per-example gradient
        itself (row ``i k + a``; D = the layer's parameter count) otherwise.
    """
    meta: list[_Layer] = []

    def shapes(p, z):
        logits, layers, _, outs = _recorded_apply(apply_fn, p, z, None)
        meta[:] = layers
        return logits, outs

    logits_shape, out_shapes = jax.eval_shape(shapes, params, x)
    _check_coverage(meta, params)
    if len(logits_shape.shape) != 2:
        raise ValueError(f"apply_fn must return (n, k) logits, got {logits_shape}")
    k = logits_shape.shape[1]
    eps0 = [jnp.zeros(s.shape, s.dtype) for s in out_shapes]

    def forward(eps):
        logits, _, inputs, _ = _recorded_apply(apply_fn, params, x, eps)
        return logits, inputs

    logits, vjp_fn, inputs = jax.vjp(forward, eps0, has_aux=True)
    n = logits.shape[0]
    eye = jnp.eye(k, dtype=logits.dtype)
    cotangents = jnp.broadcast_to(eye[:, None, :], (k, n, k))
    (grads,) = jax.vmap(vjp_fn)(cotangents)  # per layer (k, n, *out_shape)

    factors = []
    for layer, inp, g in zip(meta, inputs, grads, strict=True):
        u = _patches(layer, inp)  # (n, S, d_in [+1])
        g = g.reshape(k, n, u.shape[1], g.shape[-1])  # (k, n, S, d_out)
        if u.shape[1] == 1:
            factors.append(("outer", u[:, 0], g[:, :, 0]))
        else:
            # (k, n, S, d_out) x (n, S, d_in') -> (n, k, d_out, d_in'): one batched
            # GEMM per example; rows (i, a) then reshape without a transpose.
            w = jnp.einsum("knsc,nsd->nkcd", g, u)
            factors.append(("dense", w.reshape(n * k, -1)))
    return factors


def _layerwise_kernel(apply_fn: ApplyFn) -> EntkFn:
    """Pure ``k(x1, x2_or_None, params) -> (n1, n2, k, k)`` (layerwise method)."""

    def kernel(x1, x2, params):
        f1 = _layer_factors(apply_fn, params, x1)
        f2 = f1 if x2 is None else _layer_factors(apply_fn, params, x2)
        n1 = x1.shape[0]
        n2 = n1 if x2 is None else x2.shape[0]
        total = None  # (n1, n2, k, k)
        for a, b in zip(f1, f2, strict=True):
            if a[0] == "outer":
                inner = a[1] @ b[1].T  # (n1, n2)
                part = jnp.einsum("kic,ljc->ijkl", a[2], b[2])
                part = part * inner[:, :, None, None]
            else:
                gram = a[1] @ b[1].T  # (n1 k, n2 k)
                part = gram.reshape(n1, -1, n2, gram.shape[1] // n2)
                part = jnp.transpose(part, (0, 2, 1, 3))
            total = part if total is None else total + part
        return total

    return kernel


def layerwise_supported(apply_fn: ApplyFn, params: Any, x: jax.Array) -> bool:
    """Whether the layerwise kernel models `apply_fn` (Dense/Conv-only flax nets).

    Args:
        apply_fn: ``f(params, x) -> (n, k)``.
        params: parameters (only shapes are used).
        x: example inputs ``(n, *input_shape)`` (only shapes are used).
    """
    meta: list[_Layer] = []

    def probe(p, z):
        logits, layers, _, _ = _recorded_apply(apply_fn, p, z, None)
        meta[:] = layers
        return logits

    try:
        jax.eval_shape(probe, params, x)
        _check_coverage(meta, params)
    except NotImplementedError:
        return False
    return True


# ------------------------------------------------------------------ jacobian + GEMM


def _jacobian_gemm_kernel(apply_fn: ApplyFn) -> EntkFn:
    """Pure kernel from per-example Jacobians and one GEMM per parameter leaf."""

    def jac(params, x):
        def single(p, xi):
            return apply_fn(p, xi[None])[0]

        tree = jax.vmap(jax.jacrev(single), in_axes=(None, 0))(params, x)
        leaves = jax.tree_util.tree_leaves(tree)  # (n, k, *leaf_shape)
        return [leaf.reshape(leaf.shape[0], leaf.shape[1], -1) for leaf in leaves]

    def kernel(x1, x2, params):
        j1 = jac(params, x1)
        j2 = j1 if x2 is None else jac(params, x2)
        parts = [jnp.einsum("iap,jbp->ijab", a, b) for a, b in zip(j1, j2, strict=True)]
        return sum(parts[1:], parts[0])

    return kernel


# ------------------------------------------------------------------ public API


def resolve_implementation(
    implementation: str, apply_fn: ApplyFn, params: Any, x: jax.Array
) -> str:
    """The concrete implementation 'auto' stands for on this network.

    'layerwise' if :func:`layerwise_supported`, else 'structured_derivatives'
    (both measured fastest in benchmarks/bench_entk.py); other names pass through.
    """
    if implementation != "auto":
        return implementation
    if layerwise_supported(apply_fn, params, x):
        return "layerwise"
    return "structured_derivatives"


def empirical_ntk_fn(
    apply_fn: ApplyFn,
    implementation: Implementation = "auto",
    block: int = 0,
) -> EntkFn:
    """Empirical NTK ``k(x1, x2, params) -> (n1, n2, k, k)`` of a network.

    Same layout and values as ``nt.empirical_ntk_fn(apply_fn, trace_axes=(),
    vmap_axes=0)``: ``[i, j, a, b] = <d f_a(x1_i)/d theta, d f_b(x2_j)/d theta>``;
    ``x2=None`` means ``x2 = x1`` (and reuses the Jacobian factors).

    Args:
        apply_fn: ``f(params, x) -> (n, k)``; for 'layerwise' a flax linen apply
            whose parameters all belong to ``nn.Dense`` / ``nn.Conv`` layers.
        implementation: one of :data:`IMPLEMENTATIONS`; 'auto' resolves on the
            first call (per input shape) with :func:`resolve_implementation`.
        block: if positive, compute in ``block x block`` tiles with ``nt.batch``
            (bounds memory; recomputes the Jacobian factors per tile; n1 and n2
            must be multiples of `block`).

    Returns:
        A kernel function; jitted (or an ``nt.batch`` of a jitted function).

    Raises:
        ValueError: unknown implementation.
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(
            f"unknown eNTK implementation {implementation!r}; use one of "
            f"{list(IMPLEMENTATIONS)}"
        )
    if implementation == "auto":
        chosen: dict[tuple, EntkFn] = {}

        def auto(x1, x2, params):
            key = (x1.shape, None if x2 is None else x2.shape)
            if key not in chosen:
                name = resolve_implementation("auto", apply_fn, params, x1)
                chosen[key] = empirical_ntk_fn(apply_fn, name, block)
            return chosen[key](x1, x2, params)

        return auto
    if implementation in NT_IMPLEMENTATIONS:
        if implementation == "structured_derivatives":
            enable_structured_derivatives()
        pure = nt.empirical_ntk_fn(
            apply_fn,
            trace_axes=(),
            vmap_axes=0,
            implementation=NT_IMPLEMENTATIONS[implementation],
        )
    elif implementation == "jacobian_gemm":
        pure = _jacobian_gemm_kernel(apply_fn)
    else:
        pure = _layerwise_kernel(apply_fn)
    kfn = jax.jit(pure)
    if block > 0:
        return nt.batch(kfn, batch_size=block, device_count=0)
    return kfn
