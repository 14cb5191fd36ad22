"""Tests of ntkadv.kernels.families: the registry, the schema's family enum and the
per-family config maps."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ntkadv import sizing
from ntkadv.kernels import analytic, families, jacobians
from ntkadv.kernels.families import ordered_archs

SCHEMA = Path(__file__).parents[3] / "workflow" / "schemas" / "config.schema.yaml"


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
        "a": {"family": "conv", "depth": 2},
        "z": {"family": "conv"},
        "y": {"family": "fc", "depth": 3},
        "x": {"family": "fc"},
    }
    assert ordered_archs(archs) == ["x", "y", "z", "a", "b"]


def test_sizing_reads_the_registry_form():
    """Dense families store (m, n, d) float32 Jacobian tiles; factored ones do not."""
    n, m, d = 100, 10, 784
    extra = m * n * d * sizing.F32 / sizing.MB
    base = sizing.jacobian_disk_mb(n, m, d, "fc")
    assert sizing.jacobian_disk_mb(n, m, d, "twolayer") == base
    for name in ("conv",):
        assert sizing.jacobian_disk_mb(n, m, d, name) == pytest.approx(base + extra)


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
    from ntkadv.config import schema_errors

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
    assert arch_label("rbf") == "RBF"
