"""The kernel-family registry: one entry per analytic-NTK architecture family.

Every place that depends on a family reads this table: the analytic kernels
(`ntkadv.kernels.analytic`: which stax network), the input-Jacobian caches
(`ntkadv.kernels.jacobians`: the storage form), the resource estimates
(`ntkadv.sizing`: dense-Jacobian disk and tiling), the config (`ordered_archs`: the
workflow's panel and row order; the schema's ``$defs.family`` enum is checked
against `FAMILIES` by tests/unit/kernels/test_kernels_families.py;
`ntkadv.configcheck.fill_family_maps` adds every family to the per-family budget
maps) and the figures (`ntkadv.plotting.features.arch_label`). `ntkadv.config`,
which every job imports, does not import it: a new entry reruns only the jobs
whose code uses the families (kernel caches, feature figures).

Families (Tsilivis & Kempe 2022, experiments.md "Architecture conventions", supp.
App. C; myrtle from the authors' notebook):

* ``fc``: Flatten, ``depth`` x [Dense, ReLU], Dense(1);
* ``conv``: ``depth`` x [Conv(f x f, SAME), ReLU], Flatten, Dense(1);
* ``myrtle``: a Myrtle-style CNN, ``depth`` x [Conv(f x f, SAME), ReLU],
  AvgPool(2 x 2, stride 2), Flatten, Dense(1) (its kernel: neural-tangents' own);
* ``twolayer``: the NTK of supp. Eq. 29 (no stax network; `analytic.twolayer_ntk`).

A new family = its stax builder (or kernel module) + one `Family` entry here + a
test (and the name in the schema's ``$defs.family`` enum). This module imports
neither jax nor neural-tangents: the builders receive the `stax` module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ntkadv.typing import Form

#: Dense input-Jacobian: bytes of one buffered row block (float64 rows x n x d).
DENSE_ROW_BLOCK_BYTES = 2**29
_F64 = 8

#: builder(stax, spec with defaults filled, width) -> list of stax layers.
StaxBuilder = Callable[[Any, Mapping[str, Any], int], list]


def _common(s: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "W_std": s["W_std"],
        "b_std": s["b_std"],
        "parameterization": s["parameterization"],
    }


def _fc_layers(stax: Any, s: Mapping[str, Any], width: int) -> list:
    layers = [stax.Flatten()]
    for _ in range(s["depth"]):
        layers += [stax.Dense(width, **_common(s)), stax.Relu()]
    return [*layers, stax.Dense(1, **_common(s))]


def _conv_body(stax: Any, s: Mapping[str, Any], width: int) -> list:
    f = s["filter_size"]
    layers = []
    for _ in range(s["depth"]):
        layers += [stax.Conv(width, (f, f), padding="SAME", **_common(s)), stax.Relu()]
    return layers


def _conv_layers(stax: Any, s: Mapping[str, Any], width: int) -> list:
    return [*_conv_body(stax, s, width), stax.Flatten(), stax.Dense(1, **_common(s))]


def _myrtle_layers(stax: Any, s: Mapping[str, Any], width: int) -> list:
    return [
        *_conv_body(stax, s, width),
        stax.AvgPool((2, 2), strides=(2, 2), padding="VALID"),
        stax.Flatten(),
        stax.Dense(1, **_common(s)),
    ]


@dataclass(frozen=True)
class Family:
    """One architecture family.

    Attributes:
        name: the ``family`` value of an architectures entry.
        label: display name of the family (figures, tables).
        form: input-Jacobian storage form: 'factored' (kernels of xᵀx, xᵀx', x'ᵀx'
            only: ∇ₓΘ = a x + b x', two (m, n) matrices) or 'dense' ((m, n, d)).
        stax: builder of its neural-tangents network, None if it has none.
        cost: rough cost of one kernel entry relative to fc at the same input size
            (a hint for budgets: conv ~100x, pooled conv keeps the full spatial
            covariance, ~(H W)x more).
    """

    name: str
    label: str
    form: Form
    stax: StaxBuilder | None
    cost: float


#: The registry, in display order (the paper's FC1-FC5, CONV1-CONV2, then the
#: notebook's Myrtle-style kernel, then the two-layer kernel).
REGISTRY: tuple[Family, ...] = (
    Family("fc", "FC", "factored", _fc_layers, 1.0),
    Family("conv", "CONV", "dense", _conv_layers, 100.0),
    Family("myrtle", "Myrtle", "dense", _myrtle_layers, 1e4),
    Family("twolayer", "Two-layer (Eq. 29)", "factored", None, 1.0),
)
#: Family names in display order.
FAMILIES: tuple[str, ...] = tuple(f.name for f in REGISTRY)
_BY_NAME = {f.name: f for f in REGISTRY}


def family(name: str) -> Family:
    """The registry entry of a family name (one-line ValueError if unknown)."""
    if name not in _BY_NAME:
        raise ValueError(f"unknown family {name!r}; use one of {list(FAMILIES)}")
    return _BY_NAME[name]


def jacobian_form(name: str) -> Form:
    """Storage form of a family's input-Jacobian ('factored' or 'dense')."""
    return family(name).form


def order_rank(name: str) -> int:
    """Display rank of a family (unknown names last)."""
    return FAMILIES.index(name) if name in _BY_NAME else len(FAMILIES)


def ordered_archs(archs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Architecture names in a canonical order: family (registry order), depth, name.

    Independent of the order of the keys in the config file, so that rewriting the
    config with sorted keys changes no params (panel and row order come from here).
    """

    def key(name: str) -> tuple:
        spec = archs[name]
        return order_rank(spec.get("family", "")), int(spec.get("depth", 1)), name

    return sorted(archs, key=key)


def attacked_archs(config: Mapping[str, Any]) -> list[str]:
    """Attacked architectures: attacks.architectures, or all in canonical order."""
    return list(
        config["attacks"]["architectures"] or ordered_archs(config["architectures"])
    )


def dense_tile_rows(block_size: int, n: int, d: int) -> int:
    """Evaluation points per dense-Jacobian tile / buffered row block (float64).

    A tile holds rows x block_size pairs (about 10·block_size, bounding per-pair
    intermediates) and a row block (rows, n, d) stays below DENSE_ROW_BLOCK_BYTES.
    """
    return max(1, min(block_size // 10, DENSE_ROW_BLOCK_BYTES // (_F64 * n * d)))
