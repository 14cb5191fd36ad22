"""Tests of the blocked Jacobian contraction of top-r's ranking
(`ntkadv.features.scoring.contraction_signs`, issue 24): the signs of D(x)ᵀ c
contracted a few points at a time equal a per-point brute-force loop over the
materialised Jacobian rows, and its peak memory is bounded by the block, not by
the m x d x K contraction (the top-r job's former peak)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ntkadv.features import rescore, scoring, topr
from ntkadv.kernels.analytic import kernel_fn_from_spec
from ntkadv.kernels.jacobians import ImplicitJacobian, input_jacobian_fn


def _jacobian(form: str, m: int = 7, n: int = 11, shape=(3, 3, 1)):
    rng = np.random.default_rng(3)
    kernel_fn = kernel_fn_from_spec({"family": "fc", "depth": 1})
    x_eval = rng.uniform(size=(m, *shape))
    x_train = rng.uniform(size=(n, *shape))
    if form == "implicit":
        d = int(np.prod(shape))
        return ImplicitJacobian(
            kernel_fn, x_eval.reshape(m, d), x_train.reshape(n, d), shape, 4
        )
    return input_jacobian_fn(kernel_fn, form)(x_eval, x_train, block_size=4)


@pytest.mark.parametrize("form", ["factored", "dense", "implicit"])
@pytest.mark.parametrize("rows", [1, 3, 7, 50])
def test_contraction_signs_equal_a_per_point_loop(form, rows):
    """sign(D(x_i)ᵀ c) from each point's materialised (n, d) Jacobian row, one
    point and one column at a time, for every block size (one block, ragged
    blocks, one point per block)."""
    jac = _jacobian(form)
    c = np.random.default_rng(4).normal(size=(jac.n, 5))
    got = scoring.contraction_signs(jac, c, rows)
    assert got.dtype == np.int8 and got.shape == (jac.m, jac.d, 5)
    want = np.empty(got.shape)
    for i in range(jac.m):
        row = jac.rows(i, i + 1)[0]  # (n, d)
        for k in range(c.shape[1]):
            want[i, :, k] = np.sign(sum(row[j] * c[j, k] for j in range(jac.n)))
    np.testing.assert_array_equal(got, want)
    full = np.sign(jac.contract(c))
    assert np.abs(full).min() == 1  # no gradient entry at 0: the signs are robust
    np.testing.assert_array_equal(got, full)


def test_contraction_signs_reject_an_empty_block():
    with pytest.raises(ValueError, match="rows"):
        scoring.contraction_signs(_jacobian("factored"), np.ones((11, 1)), 0)


@pytest.mark.parametrize("task", ["binary", "multiclass"])
@pytest.mark.parametrize("chunk", [1, 5, 1000])
def test_chunked_ranking_equals_one_rescore(task, chunk):
    """`topr.rank_label_sets` rescoring `chunk` candidates at a time gives the
    robustness of one `rescore` of every candidate and its ranking, per label set
    (ties broken by the smaller index)."""
    rng = np.random.default_rng(5)
    n, n_feat, v, k = 30, 23, 9, 1 if task == "binary" else 3
    p_plus = rng.normal(size=(n_feat, v))
    p_plus[rng.uniform(size=p_plus.shape) < 0.3] = np.nan
    lf = rescore.LabelFree(
        indices=np.arange(n_feat) * 2,
        eigvals=rng.uniform(0.5, 2.0, n_feat),
        eigvecs=rng.normal(size=(n, n_feat)),
        p_clean=rng.normal(size=(n_feat, v)),
        p_plus=p_plus,
        p_minus=np.where(np.isnan(p_plus), rng.normal(size=p_plus.shape), np.nan),
    )
    labels = rng.integers(0, max(k, 2), size=(4, n))
    if task == "binary":
        ys = (2.0 * labels - 1)[..., None]
        y_val = (2.0 * rng.integers(0, 2, v) - 1)[:, None]
    else:
        ys, y_val = np.eye(k)[labels], np.eye(k)[rng.integers(0, k, v)]
    ranked, rob = topr.rank_label_sets(lf, ys, y_val, task, chunk=chunk)
    want = rescore.rescore(lf, ys, y_val, task).robustness
    np.testing.assert_array_equal(rob, want)
    for j in range(ys.shape[0]):
        np.testing.assert_array_equal(
            ranked[j], topr.robustness_ranking(want[j], lf.indices)
        )


GUARD = textwrap.dedent(
    """
    import json, sys
    sys.path[:0] = [{scripts!r}]
    import numpy as np
    from ntkadv.features import rescore, scoring, topr
    from ntkadv.kernels.jacobians import InputJacobian
    from ntkadv.timing import proc_status_kb

    m, n, d, k, chunk = {m}, {n}, {d}, {k}, 200
    rng = np.random.default_rng(0)
    jac = InputJacobian(
        form="factored", x_eval=rng.uniform(size=(m, d)),
        x_train=rng.uniform(size=(n, d)), a=rng.normal(size=(m, n)),
        b=rng.normal(size=(m, n)),
    )
    c = rng.normal(size=(n, k))
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # VmHWM := VmRSS
    base = proc_status_kb("VmRSS") * 1024
    if {blocked}:
        for lo in range(0, k, chunk):  # as _Caches.label_free_at(point_block=4)
            scoring.contraction_signs(jac, c[:, lo : lo + chunk], 4)
    else:
        jac.contract(c)  # the former top-r ranking: every candidate at once
    print(json.dumps({{"grew": proc_status_kb("VmHWM") * 1024 - base}}))
    """
)


@pytest.mark.skipif(
    not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc"
)
@pytest.mark.parametrize("blocked", [True, False])
def test_ranking_contraction_peak_is_a_block_not_m_d_k(blocked):
    """Peak RSS (VmHWM, reset at the start) of the contraction of K = n = 1500
    candidates at m = 40 points (d = 768) grows by less than a quarter of the
    m x d x K float64 array when contracted as top-r does (chunks of 200, 4
    points per block); by construction the one-call contraction grows by more
    than the array itself (its result and a temporary of the same size), so
    the guard can fail."""
    from pathlib import Path

    import ntkadv

    m, n, d = 40, 1500, 768
    scripts = str(Path(ntkadv.__file__).parents[1])
    code = GUARD.format(scripts=scripts, m=m, n=n, d=d, k=n, blocked=blocked)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
        env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    grew = json.loads(out.stdout.strip().splitlines()[-1])["grew"]
    full = m * d * n * 8
    if blocked:
        assert grew < full / 4, grew
    else:
        assert grew > full, grew
