"""Tests of ntkadv.plotting.attacks: the figures build with the right curves."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from ntkadv.plotting import attacks as pa

TAUS = [0.1, 10.0, math.inf]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _table():
    rows = []
    for arch in ("fc1", "conv1"):
        for labels in ("true", "perm1", "perm2"):
            for tau in TAUS:
                base = {"dataset": "d", "arch": arch, "labels": labels, "tau": tau}
                rows.append(
                    {**base, "attack": "clean", "eps": 0.0, "eps_mult": 0.0,
                     "accuracy": 0.8, "n_eval": 10}
                )  # fmt: skip
                attacks = ("fgsm", "pgd", "random_sign")
                if labels == "true":
                    attacks += ("first_order",)
                for a in attacks:
                    mults = (
                        (0.5, 1.0) if (tau == math.inf and labels == "true") else (1,)
                    )
                    for e in mults:
                        rows.append(
                            {**base, "attack": a, "eps": 0.03 * e, "eps_mult": e,
                             "accuracy": 0.2 * e, "n_eval": 10}
                        )  # fmt: skip
    return pd.DataFrame(rows)


def test_robustness_vs_time_has_true_curves_and_the_null():
    fig = pa.robustness_vs_time(_table(), "d", ["fc1", "conv1"])
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert "clean" in labels and "random sign (control)" in labels
    assert "null: clean" in labels and "null: FGSM (at τ_early, ∞)" in labels
    assert "AND" in fig._suptitle.get_text()
    fgsm = next(line for line in ax.get_lines() if line.get_label().startswith("FGSM"))
    np.testing.assert_allclose(fgsm.get_ydata(), [0.2, 0.2, 0.2])  # true labels only


def test_accuracy_vs_eps_panels_per_attack_true_labels_only():
    fig = pa.accuracy_vs_eps(_table(), "d", ["fc1", "conv1"])
    titles = [ax.get_title() for ax in fig.axes]
    assert any("random sign" in t for t in titles) and any("PGD" in t for t in titles)
    line = fig.axes[0].get_lines()[0]
    np.testing.assert_allclose(line.get_xdata(), [0.0, 0.015, 0.03])
    np.testing.assert_allclose(line.get_ydata(), [0.8, 0.1, 0.2])


def test_coinciding_attack_curves_stay_distinguishable():
    """FGSM, PGD and first-order give the same accuracies in `_table`: their lines
    differ in dash pattern and marker, and each is drawn above the larger-marker
    ones (hollow markers nest instead of hiding)."""
    fig = pa.robustness_vs_time(_table(), "d", ["fc1"])
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    names = ("FGSM (Eq. 6/8)", "PGD", "first-order, label-free (Eq. 16-18)")
    same = [lines[n] for n in names]
    np.testing.assert_allclose(same[0].get_ydata(), same[2].get_ydata())
    dashes = {str(line.get_linestyle()) + str(line._dash_pattern) for line in same}
    assert len(dashes) == 3
    assert len({line.get_marker() for line in same}) == 3
    sizes = [line.get_markersize() for line in same]
    zorders = [line.get_zorder() for line in same]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 3
    assert zorders == sorted(zorders) and len(set(zorders)) == 3
    assert same[0].get_markerfacecolor() == "none"  # the largest is hollow


def test_coinciding_kernels_in_accuracy_vs_eps_stay_distinguishable():
    """fc1 and conv1 have identical accuracies in `_table`: different markers and
    dashes, the later (smaller) marker drawn above the earlier (larger) one."""
    fig = pa.accuracy_vs_eps(_table(), "d", ["fc1", "conv1"])
    fc1, conv1 = fig.axes[0].get_lines()
    np.testing.assert_allclose(fc1.get_ydata(), conv1.get_ydata())
    assert fc1.get_marker() != conv1.get_marker()
    assert fc1.get_markersize() > conv1.get_markersize()
    assert fc1.get_zorder() < conv1.get_zorder()
    assert str(fc1._dash_pattern) != str(conv1._dash_pattern)
