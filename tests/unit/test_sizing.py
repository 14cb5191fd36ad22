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


# ------------------------------------------------------------- the job length limit


@pytest.mark.parametrize(
    ("per_point", "m", "limit", "k"),
    [
        (1.0, 100, 100.0, 1),  # fits: no shards
        (1.0, 100, 99.0, 2),
        (1.0, 100, 34.0, 3),  # ceil(100 / 3) = 34 points
        (1.0, 100, 33.9, 4),
        (10.0, 5, 9.0, 5),  # not even one point fits: one point per shard
    ],
)
def test_shard_count_is_the_fewest_shards_that_fit(per_point, m, limit, k):
    def request(points: int) -> float:
        return per_point * points

    assert sizing.shard_count(request, m, limit) == k
    if 1 < k < m:  # one shard fewer does not fit
        assert request(-(-m // (k - 1))) > limit
    if k < m:
        assert request(-(-m // k)) <= limit


def test_shard_count_counts_a_fixed_cost_per_shard():
    # 10 min start-up + 1 min per point: 100 points need ceil(100 / 40) = 3 shards
    assert sizing.shard_count(lambda p: 10.0 + p, 100, 50.0) == 3


@pytest.mark.parametrize(("m", "k"), [(12, 3), (10, 3), (7, 7), (1000, 25), (5, 1)])
def test_shard_ranges_tile_the_points_in_order(m, k):
    ranges = sizing.shard_ranges(m, k)
    assert len(ranges) == k
    assert ranges[0][0] == 0 and ranges[-1][1] == m
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    sizes = [b - a for a, b in ranges]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


def test_shard_ranges_reject_more_shards_than_points():
    with pytest.raises(ValueError, match="3 shards of 2 points"):
        sizing.shard_ranges(2, 3)


@pytest.mark.parametrize(
    ("minutes", "attempts"), [(100, 1), (1440, 1), (1441, 2), (23700, 17)]
)
def test_resumable_attempts_are_days_rounded_up(minutes, attempts):
    assert sizing.resumable_attempts(minutes, 1440) == attempts


def test_resumable_runtime_never_exceeds_the_limit():
    assert sizing.resumable_runtime_min(1000, 1, 1440) == 1000
    assert sizing.resumable_runtime_min(1000, 2, 1440) == 1440  # doubled, capped
    assert [sizing.resumable_runtime_min(23700, a, 1440) for a in (1, 5, 17)] == [
        1440
    ] * 3


def test_resumable_retries_cover_the_longest_job_plus_one_spare():
    assert sizing.resumable_retries([100, 1440], 1440) is None  # the profile's
    assert sizing.resumable_retries([100, 8233], 1440) == 6  # 6 attempts: 5 + 1
    assert sizing.resumable_retries([23700, 8233], 1440, spare=0) == 16
