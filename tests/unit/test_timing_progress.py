"""ntkadv.timing.Progress: rate-limited progress lines with rate and ETA."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from ntkadv.kernels.blocked import block_starts, n_blocks, ntk_gram_blocked
from ntkadv.timing import Progress


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def lines(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "progress-test"]


def test_lines_are_rate_limited_and_the_last_is_always_logged(caplog):
    log = logging.getLogger("progress-test")
    caplog.set_level(logging.INFO, logger="progress-test")
    clock = Clock()
    p = Progress(log, "blocks", total=10, interval=30.0, clock=clock)
    for _ in range(9):  # 9 steps of 10 s: lines at t = 30, 60 and 90 s after start
        clock.t += 10.0
        p(1)
    assert len(lines(caplog)) == 3
    clock.t += 10.0
    p(1)
    out = lines(caplog)
    assert len(out) == 4 and out[-1].endswith("done")
    assert out[0] == "blocks: 3/10 (30.0 %), 0.1/s, elapsed 30 s, ETA 70 s"


def test_eta_is_remaining_steps_over_the_mean_rate():
    clock = Clock()
    p = Progress(None, "x", total=400, clock=clock)
    clock.t += 600.0
    p(100)  # no logger: counts, logs nothing
    assert p.done == 100
    # 100 steps in 600 s -> 300 steps left take 1800 s = 30 min
    assert (
        p.line(clock.t)
        == "x: 100/400 (25.0 %), 0.167/s, elapsed 10.0 min, ETA 30.0 min"
    )


@pytest.mark.parametrize(
    "n1,n2,b,symmetric",
    [(7, 7, 3, True), (5, 5, 10, True), (7, 7, 3, False), (10, 4, 5, False)],
)
def test_gram_reports_every_block_it_computes(n1, n2, b, symmetric):
    rng = np.random.default_rng(0)
    x1 = rng.normal(size=(n1, 3))
    x2 = x1 if symmetric else rng.normal(size=(n2, 3))
    calls = []
    gram = ntk_gram_blocked(lambda a, c: a @ c.T, x1, x2, b, progress=calls.append)
    np.testing.assert_allclose(gram, x1 @ x2.T)
    rows, cols = len(block_starts(n1, min(b, n1))), len(block_starts(n2, min(b, n2)))
    brute = sum(
        1 for i in range(rows) for j in range(cols) if not (symmetric and j < i)
    )
    assert len(calls) == brute == n_blocks(n1, n2, b, symmetric)


@pytest.mark.parametrize("family", ["fc", "conv"])
def test_jacobian_cache_reports_every_row_it_writes(tmp_path, family):
    """write_input_jacobian calls progress once per block with the block's rows
    (the dense form stores no Jacobian: one call for all rows)."""
    from ntkadv.kernels import jacobians
    from ntkadv.kernels.analytic import full_spec, kernel_fn_from_spec

    spec = full_spec({"family": family, "depth": 1})
    rng = np.random.default_rng(0)
    x_eval, x_train = rng.random((5, 4, 4, 1)), rng.random((3, 4, 4, 1))
    calls = []
    jacobians.write_input_jacobian(
        tmp_path / "jac.h5",
        kernel_fn_from_spec(spec),
        jacobians.jacobian_form(family),
        x_eval,
        x_train,
        block_size=2,
        progress=calls.append,
    )
    assert sum(calls) == 5 and len(calls) >= (3 if family == "fc" else 1)
