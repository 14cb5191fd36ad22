"""The matrix-free NTK reference of supp. App. C (transfer.solver: iterative, the
path config/paper.yaml runs at n = 60,000) against the dense one, at reduced size:
the rule's task on both solvers, the blocked kernel products and weighted Jacobian
contractions it uses, and a peak-RSS guard that no n x n array is formed."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ntkadv import h5io
from ntkadv.kernels import jacobians
from ntkadv.kernels.analytic import twolayer_ntk
from ntkadv.spectra import eigh, iterative
from ntkadv.transfer import task

TOL = 1e-6
ARCH = {"family": "twolayer"}


def _mnist_like(n: int, m: int, d: int, k: int, seed: int = 0):
    """Inputs in [0, 1] around k cluster centres (a spread NTK spectrum), float32
    as rule prepare_dataset writes them, one-hot targets of the clusters."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(size=(k, d))
    labels = rng.integers(0, k, n + m)
    x = np.clip(centres[labels] + 0.3 * rng.normal(size=(n + m, d)), 0, 1)
    y = np.eye(k, dtype=np.float32)[labels]
    return x[:n].astype(np.float32), x[n:].astype(np.float32), y[:n], y[n:]


def _settings(solver: str) -> task.ReferenceSettings:
    return task.ReferenceSettings(
        arch=ARCH, n_train=None, lr=0.01, eps=0.3, seed=0, epochs=30000, n_eval=6,
        align_epoch=1000, image_index=None, image_epochs=(100,), x64=True,
        solver=solver, solver_tol=TOL,
    )  # fmt: skip


@pytest.fixture(scope="module")
def rule_inputs(tmp_path_factory):
    """data.h5, gram.h5, eigh.h5 and jacobian.h5 as the upstream rules write them."""
    root = tmp_path_factory.mktemp("appc")
    x, x_test, y, y_test = _mnist_like(420, 16, 30, 3)
    labels = np.argmax(y_test, axis=1)
    paths = {k: str(root / f"{k}.h5") for k in ("data", "gram", "eigh", "jacobian")}
    h5io.write(
        paths["data"],
        dict(x_train=x, y_train=y, x_test=x_test, y_test=y_test, labels_test=labels),
        dict(task="multiclass", source="synthetic", classes=[0, 1, 2]),
    )
    x64, t64 = x.astype(np.float64), x_test.astype(np.float64)
    gram = np.asarray(twolayer_ntk(x64, x64))
    h5io.write(
        paths["gram"],
        dict(k_train_train=gram, k_test_train=np.asarray(twolayer_ntk(t64, x64))),
    )
    spec = eigh.eigendecompose(gram)
    h5io.write(paths["eigh"], dict(eigvals=spec.eigvals, eigvecs=spec.eigvecs))
    jacobians.write_input_jacobian(
        paths["jacobian"], twolayer_ntk, "factored", t64, x64
    )
    return paths


def _run(paths: dict, out: str, solver: str) -> dict:
    s = _settings(solver)
    inputs = {
        k: v for k, v in paths.items() if solver == "dense" or k in ("data", "jacobian")
    }
    ids = {"dataset": "synthetic", "arch": "twolayer"}
    task.compute_transfer_reference(
        inputs, {"reference": out}, s, ids, logging.getLogger("test")
    )
    return {**h5io.read(out), "attrs": h5io.read_attrs(out)}


def rel(a, b):
    return float(np.linalg.norm(np.asarray(a) - b) / np.linalg.norm(b))


def test_matrix_free_rule_task_equals_the_dense_one(rule_inputs, tmp_path, monkeypatch):
    """compute_transfer_reference with solver iterative (kernel blocks of 128 over
    420 points, no gram.h5 or eigh.h5 given) reproduces the dense solver's output
    within the solver tolerance: f_t at every epoch, the alignment curve, the loss
    gradients and every correctness flag of the clean, own-FGSM and random-sign
    evaluations."""
    monkeypatch.setattr(iterative, "BLOCK_SIZE", 128)
    dense = _run(rule_inputs, str(tmp_path / "dense.h5"), "dense")
    free = _run(rule_inputs, str(tmp_path / "free.h5"), "iterative")
    np.testing.assert_array_equal(free["epoch"], dense["epoch"])
    for e in range(len(dense["epoch"])):
        assert rel(free["f"][e], dense["f"][e]) <= TOL, dense["epoch"][e]
    assert rel(free["align_f"], dense["align_f"]) <= 10 * TOL
    assert rel(free["loss_grad"], dense["loss_grad"]) <= 1e-5  # stored as float32
    for key in ("correct_clean", "correct_own", "correct_random"):
        np.testing.assert_array_equal(free[key], dense[key])
    lam, lam_dense = free["attrs"]["lambda_max"], dense["attrs"]["lambda_max"]
    assert abs(lam - lam_dense) <= 1e-8 * lam_dense
    assert free["attrs"]["n_train"] == dense["attrs"]["n_train"] == 420
    assert free["attrs"]["transfer"]["solver"] == "iterative"


def test_a_loose_tolerance_fails_the_comparison(rule_inputs, monkeypatch):
    """By construction: the same comparison with the Krylov basis cut early (tol
    0.3) is off by far more than TOL, so the test above can fail."""
    from ntkadv.data import load_prepared

    data = load_prepared(rule_inputs["data"])
    s = _settings("iterative")
    epochs = s.eval_epochs()
    loose = dataclasses.replace(s, solver_tol=0.3)
    log = logging.getLogger("test")
    tight = task._matrix_free_reference(data, s, epochs, log)
    cut = task._matrix_free_reference(data, loose, epochs, log)
    t = epochs[-1] / tight.n
    assert cut.solver.krylov.info.iterations < tight.solver.krylov.info.iterations
    assert rel(cut.predict(t), tight.predict(t)) > 10 * TOL


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("block", [7, 50, 1000])
def test_kernel_matmul_equals_the_full_kernel(dtype, block):
    x, x_test, y, _ = _mnist_like(103, 11, 9, 3, seed=3)
    x, x_test = x.astype(dtype), x_test.astype(dtype)
    c = np.random.default_rng(4).normal(size=(103, 3))
    full = np.asarray(twolayer_ntk(x_test, x), dtype=np.float64) @ c
    got = iterative.kernel_matmul(twolayer_ntk, x_test, x, c, block)
    assert got.dtype == np.float64 and got.shape == (11, 3)
    scale = np.abs(full).max() * (1e-13 if dtype == np.float64 else 1e-6)
    np.testing.assert_allclose(got, full, rtol=0, atol=scale)
    vec = iterative.kernel_matmul(twolayer_ntk, x_test, x, c[:, 0], block)
    np.testing.assert_allclose(vec, got[:, 0], rtol=1e-12)


@pytest.mark.parametrize("form", ["factored", "dense", "implicit"])
def test_contract_weighted_is_the_weighted_sum_of_contract(form):
    """D(x_i)ᵀ (C g_i) = Σ_k g_ik (D(x_i)ᵀ C)_k in every Jacobian form."""
    rng = np.random.default_rng(5)
    x, x_test = rng.uniform(size=(40, 6)), rng.uniform(size=(7, 6))
    c, g = rng.normal(size=(40, 3)), rng.normal(size=(7, 3))
    if form == "implicit":
        jac = jacobians.ImplicitJacobian(twolayer_ntk, x_test, x, (6,), block_size=9)
    else:
        jac = jacobians.input_jacobian_fn(twolayer_ntk, form)(x_test, x)
    want = np.einsum("mdk,mk->md", jac.contract(c), g)
    np.testing.assert_allclose(
        jac.contract_weighted(c, g), want, rtol=1e-10, atol=1e-12
    )
    with pytest.raises(ValueError, match="g must be"):
        jac.contract_weighted(c, g[:, :2])


GUARD = textwrap.dedent(
    """
    import json, logging, sys
    sys.path[:0] = [{scripts!r}, {tests!r}]
    import jax
    jax.config.update("jax_enable_x64", True)
    import numpy as np
    from test_transfer_matrix_free import _mnist_like, _settings
    from ntkadv.kernels import jacobians
    from ntkadv.kernels.analytic import twolayer_ntk
    from ntkadv.spectra import iterative
    from ntkadv.timing import proc_status_kb
    from ntkadv.transfer import reference, task

    n, block = {n}, {block}
    iterative.BLOCK_SIZE = block
    iterative.MAX_BLOCK_BYTES = 8 * n * n
    x, x_test, y, y_test = _mnist_like(n, 20, 40, 3, seed=6)
    data = dict(x_train=x, y_train=y, x_test=x_test)
    s = _settings("iterative")
    epochs = s.eval_epochs()[:4]  # short times: few Krylov blocks
    jac = jacobians.input_jacobian_fn(twolayer_ntk, "factored")(x_test, x)
    small = _mnist_like(50, 5, 40, 3)
    task._matrix_free_reference(dict(x_train=small[0], y_train=small[2],
                                     x_test=small[1]), s, epochs, logging.getLogger())
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # VmHWM := VmRSS (ru_maxrss carries the parent's peak)
    base = proc_status_kb("VmRSS") * 1024
    ref = task._matrix_free_reference(data, s, epochs, logging.getLogger())
    reference.ntk_transfer_reference(ref, jac, twolayer_ntk, x, x_test, y_test,
        "multiclass", epochs, 0.3, align_epoch=1000, block_size=block)
    peak = proc_status_kb("VmHWM") * 1024
    print(json.dumps({{"grew": peak - base}}))
    """
)


@pytest.mark.skipif(
    not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc"
)
@pytest.mark.parametrize("blocked", [True, False])
def test_no_n_by_n_array_is_formed(blocked):
    """Peak RSS (VmHWM, reset at the start) of the matrix-free reference (solver,
    Θ(X_test, X), attacks) grows by less than a quarter of one n x n float64 array
    over its start (n = 4000, kernel blocks of 500); by construction, the same run
    with one n x n kernel block grows by more (so the guard can fail)."""
    from pathlib import Path

    import ntkadv

    n = 4000
    block = 500 if blocked else n
    scripts = str(Path(ntkadv.__file__).parents[1])
    code = GUARD.format(
        scripts=scripts, tests=str(Path(__file__).parent), n=n, block=block
    )
    env = {**os.environ, "PJRT_NPROC": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    grew = json.loads(out.stdout.strip().splitlines()[-1])["grew"]
    nn = n * n * 8
    if blocked:
        assert grew < nn / 4, grew
    else:
        assert grew > nn / 2, grew
