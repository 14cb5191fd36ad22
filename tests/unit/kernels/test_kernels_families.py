"""Tests of ntkadv.kernels.families: the registry and its Myrtle-style family.

The myrtle kernel is checked against the stax network written out by hand and
against the empirical NTK of wide finite networks (Monte Carlo); its Gram and dense
input-Jacobian pipelines run in test_kernels_blocked / test_kernels_jacobians
(`_shared.SPECS` holds myrtle1).
"""

from __future__ import annotations

import math
from pathlib import Path

import jax
import neural_tangents as nt
import numpy as np
import pytest
import yaml
from neural_tangents import stax

from ntkadv import sizing
from ntkadv.kernels import analytic, families, jacobians
from ntkadv.kernels.families import ordered_archs

SCHEMA = Path(__file__).parents[3] / "workflow" / "schemas" / "config.schema.yaml"
W_STD, B_STD = math.sqrt(2.0), 0.1


def _x(n, seed, shape=(4, 4, 1)):
    return np.random.default_rng(seed).uniform(size=(n, *shape))


def test_schema_family_enum_is_the_registry():
    """The schema's one family enum lists exactly the registry's families."""
    with open(SCHEMA) as f:
        schema = yaml.safe_load(f)
    assert schema["$defs"]["family"]["enum"] == list(families.FAMILIES)


def test_registry_entries():
    assert families.FAMILIES[:2] == ("fc", "conv")  # the paper's FC*, CONV* first
    for fam in families.REGISTRY:
        assert fam.form in ("factored", "dense")
        assert jacobians.jacobian_form(fam.name) == fam.form
        assert fam.label and fam.cost > 0
        if fam.stax is None:
            with pytest.raises(ValueError, match="no stax network"):
                analytic.stax_from_spec({"family": fam.name})
    with pytest.raises(ValueError, match="unknown family 'rbf'"):
        families.family("rbf")
    archs = {
        "b": {"family": "twolayer"},
        "a": {"family": "myrtle", "depth": 2},
        "z": {"family": "conv"},
        "y": {"family": "fc", "depth": 3},
        "x": {"family": "fc"},
    }
    assert ordered_archs(archs) == ["x", "y", "z", "a", "b"]


def test_sizing_reads_the_registry_form():
    """Factored families store two (m, n) float64 matrices beside the inputs; dense
    families store the inputs only (their D is recomputed by the consumers)."""
    n, m, d = 100, 10, 784
    inputs = (n + m) * d * sizing.F64 / sizing.MB
    factored = 2 * m * n * sizing.F64 / sizing.MB
    base = sizing.jacobian_disk_mb(n, m, d, "fc")
    assert base == pytest.approx(inputs + factored)
    assert sizing.jacobian_disk_mb(n, m, d, "twolayer") == base
    for name in ("conv", "myrtle"):
        assert sizing.jacobian_disk_mb(n, m, d, name) == pytest.approx(inputs)
        assert sizing.jacobian_tile_mb(n, d, 100, name) > 0
        assert sizing.jacobian_recompute_min(n, m, d, name) > 0
    for name in ("fc", "twolayer"):
        assert sizing.jacobian_tile_mb(n, d, 100, name) == 0
        assert sizing.jacobian_recompute_min(n, m, d, name) == 0


def test_paper_scale_conv_jacobian_is_under_3_gb():
    """Issue 24: ≤ 3 GB per paper-scale CIFAR-2 CONV kernel (m = 1000, n = 10,000,
    d = 3072; was 123 GB), and no Jacobian job buffer grows with m·n·d."""
    n, m, d = 10_000, 1000, 3072
    assert sizing.jacobian_disk_mb(n, m, d, "conv") * sizing.MB < 3e9
    assert sizing.jacobian_mem_mb(n, d, 500) < 4000


@pytest.mark.parametrize("get", ["ntk", "nngp"])
@pytest.mark.parametrize("depth", [1, 2])
def test_myrtle_equals_explicit_stax(depth, get):
    """kernel_fn_from_spec(myrtle) == Conv-ReLU x depth, AvgPool, Flatten, Dense."""
    x1, x2 = _x(3, 1), _x(2, 2)
    dense = {"W_std": W_STD, "b_std": B_STD, "parameterization": "ntk"}
    layers = []
    for _ in range(depth):
        layers += [stax.Conv(8, (3, 3), padding="SAME", **dense), stax.Relu()]
    layers += [
        stax.AvgPool((2, 2), strides=(2, 2), padding="VALID"),
        stax.Flatten(),
        stax.Dense(1, **dense),
    ]
    ref = stax.serial(*layers)[2](x1, x2, get)
    got = analytic.kernel_fn_from_spec({"family": "myrtle", "depth": depth}, get)
    np.testing.assert_allclose(got(x1, x2), ref, rtol=1e-12)
    # pooling mixes locations: the myrtle kernel is not the conv kernel
    conv = analytic.kernel_fn_from_spec({"family": "conv", "depth": depth}, get)
    assert not np.allclose(conv(x1, x2), ref, rtol=1e-3)


def test_myrtle_matches_wide_network():
    """Analytic myrtle NTK vs the empirical NTK of width-512 nets, 8 draws averaged
    (Monte Carlo error a few percent)."""
    x1, x2 = _x(3, 3), _x(2, 4)
    spec = {"family": "myrtle", "depth": 1}
    theory = np.asarray(analytic.kernel_fn_from_spec(spec)(x1, x2))
    init_fn, apply_fn, _ = analytic.stax_from_spec(spec, width=512)
    entk_fn = jax.jit(nt.empirical_ntk_fn(apply_fn, trace_axes=(), vmap_axes=0))
    draws = []
    for seed in range(8):
        _, params = init_fn(jax.random.PRNGKey(seed), x1.shape)
        draws.append(np.asarray(entk_fn(x1, x2, params))[:, :, 0, 0])
    entk = np.mean(draws, axis=0)
    np.testing.assert_allclose(entk, theory, rtol=0.05, atol=0.02 * theory.max())


def _smoke_validated():
    """tests/config/smoke.yaml as the workflow validates it (common.smk)."""
    from snakemake.utils import validate

    from ntkadv.configcheck import fill_family_maps, load_config

    repo = SCHEMA.parents[2]
    cfg = load_config([str(repo / "tests/config/smoke.yaml")], None, str(repo))
    validate(cfg, str(SCHEMA))
    with open(SCHEMA) as f:
        fill_family_maps(cfg, yaml.safe_load(f), families.FAMILIES)
    validate(cfg, str(SCHEMA))
    return cfg


def test_per_family_maps_get_every_family_with_its_defaults():
    """Families a config leaves out get the defaults (null / 0 / the budget's)."""
    cfg = _smoke_validated()
    given = yaml.safe_load((SCHEMA.parents[2] / "tests/config/smoke.yaml").read_text())
    for name in families.FAMILIES:
        budget = cfg["attacks"]["budget"][name]
        if name in given["attacks"]["budget"]:
            assert budget.items() >= given["attacks"]["budget"][name].items()
        else:
            assert budget == {
                "max_times": None,
                "pgd_times": None,
                "pgd_steps": None,
                "eps_curve": True,
                "eps_curve_pgd": True,
                "n_eval": None,
                "block_size": None,
            }
        for key, default in (("n_eval", None), ("spread", 0)):
            assert cfg["features"][key][name] == given["features"][key].get(
                name, default
            )


def test_schema_refuses_an_unknown_family_key():
    from ntkadv.configcheck import schema_errors

    cfg = _smoke_validated()
    cfg["attacks"]["budget"]["rbf"] = {}
    cfg["features"]["spread"]["rbf"] = 1
    errors = schema_errors(cfg, str(SCHEMA))
    assert len(errors) == 2 and all("'rbf' is not one of" in e for e in errors)


def test_arch_labels_come_from_the_registry():
    """The figures' names: the paper's FC1/CONV2/two-layer, the new family's label."""
    from ntkadv.plotting.features import arch_label

    assert [arch_label(a) for a in ("fc1", "fc5", "conv2", "twolayer")] == [
        "FC1",
        "FC5",
        "CONV2",
        "Two-layer (Eq. 29)",
    ]
    assert arch_label("myrtle1") == families.family("myrtle").label + "1"
    assert arch_label("rbf") == "RBF"
