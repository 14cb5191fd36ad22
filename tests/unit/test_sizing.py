"""Tests of ntkadv.sizing: the resource estimates of the workflow's jobs."""

from __future__ import annotations

import pytest

from ntkadv import sizing


@pytest.mark.parametrize(("attempt", "factor"), [(1, 1), (2, 2), (3, 4), (4, 8)])
def test_on_attempt_doubles_per_retry(attempt, factor):
    assert sizing.on_attempt(1500.0, attempt) == 1500 * factor
    assert sizing.on_attempt(10.0, attempt, floor=60.0) == 60 * factor
    assert isinstance(sizing.on_attempt(1.5, attempt), int)


@pytest.mark.parametrize(("source", "d"), [("mnist", 784), ("cifar10", 3072)])
def test_input_dim(source, d):
    assert sizing.input_dim(source) == d


@pytest.mark.parametrize(
    ("block_size", "n", "d", "rows"),
    [
        (100, 50, 784, 10),
        (5, 50, 784, 1),
        (100, 20000, 3072, 1),
        (1000, 1000, 3072, 21),
    ],
)
def test_dense_tile_rows_bounds_the_buffered_row_block(block_size, n, d, rows):
    got = sizing.dense_tile_rows(block_size, n, d)
    assert got == rows
    assert got == 1 or got * n * d * sizing.F64 <= sizing.DENSE_ROW_BLOCK_BYTES


def test_estimates_grow_with_the_problem():
    small = sizing.dynamics_mem_mb("cnn", "mnist", 100, 10, 4, 0)
    assert sizing.dynamics_mem_mb("cnn", "mnist", 100, 10, 8, 0) > small > 3000
    # the (10 B, P) Jacobian (implementation 1) vs one layer's gradients (layerwise)
    jac = sizing.dynamics_mem_mb(
        "cnn", "mnist", 100, 10, 100, 0, "jacobian_contraction"
    )
    layerwise = sizing.dynamics_mem_mb("cnn", "mnist", 100, 10, 100, 0, "auto")
    assert jac > 5 * layerwise


def test_flop_based_runtimes_are_minutes():
    """A flop count whose time at the stated rate is known in hours comes back as
    60 x hours minutes (not seconds), and tiny jobs get the 30-minute floor:
    (n + m) n d = 60000 * 60000 * 2000 = 7.2e12 flop at 2e9 flop/s = 3600 s."""
    assert sizing.kernel_runtime_min(60000, 0, 2000) == pytest.approx(60.0)
    assert sizing.kernel_runtime_min(1, 1, 1) == 30.0
