"""Tests of ntkadv.spectra.iterative: matrix-free f_t (supp. Eq. 3) vs dense eigh."""

from __future__ import annotations

import logging
import math
import tracemalloc

import h5py
import numpy as np
import pytest

from ntkadv.kernels.analytic import twolayer_ntk
from ntkadv.spectra import eigh, iterative, predictor

TOL = 1e-6
LR = 0.01


def clustered_data(n: int, d: int = 40, k: int = 3, m: int = 20, seed: int = 0):
    """MNIST-like inputs in [0, 1]: k cluster centres plus noise (a spread spectrum)."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(size=(k, d))
    labels = rng.integers(0, k, n + m)
    x = np.clip(centres[labels] + 0.3 * rng.normal(size=(n + m, d)), 0, 1)
    return x[:n], x[n:], np.eye(k)[labels[:n]]


@pytest.fixture(scope="module")
def problem():
    x, x_test, y = clustered_data(700)
    gram = np.asarray(twolayer_ntk(x, x))
    spec = eigh.eigendecompose(gram)
    k_test = np.asarray(twolayer_ntk(x_test, x))
    return x, x_test, y, gram, spec, k_test


def rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.parametrize("block_size", [128, 700, 1000])
def test_kernel_and_gram_matvecs_match_dense(problem, block_size, tmp_path):
    x, _, _, gram, _, _ = problem
    v = np.random.default_rng(1).normal(size=(x.shape[0], 4))
    op = iterative.KernelMatvec(twolayer_ntk, x, block_size=block_size)
    np.testing.assert_allclose(op(v), gram @ v, rtol=1e-11, atol=1e-9)
    np.testing.assert_allclose(op(v[:, 0]), gram @ v[:, 0], rtol=1e-11, atol=1e-9)
    np.testing.assert_allclose(op.diagonal(), np.diag(gram), rtol=1e-12)
    path = tmp_path / "gram.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("k", data=gram, chunks=(64, gram.shape[0]))
    with h5py.File(path, "r") as f:
        g_op = iterative.GramMatvec(f["k"], block_rows=block_size)
        np.testing.assert_allclose(g_op(v), gram @ v, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(g_op.diagonal(), np.diag(gram))
    lin = iterative.as_linear_operator(op)
    np.testing.assert_allclose(lin @ v, gram @ v, rtol=1e-11, atol=1e-9)


def test_kernel_matvec_logs_each_product(problem, monkeypatch, caplog):
    """With a logger, each matvec is one line (count, n, columns): INFO from
    MATVEC_LOG_S seconds on, DEBUG below; the products are those of a silent op."""
    x, *_ = problem
    v = np.random.default_rng(2).normal(size=(x.shape[0], 3))
    log = logging.getLogger("ntkadv.test_matvec")
    silent = iterative.KernelMatvec(twolayer_ntk, x, block_size=128)
    op = iterative.KernelMatvec(twolayer_ntk, x, block_size=128, log=log)
    with caplog.at_level(logging.DEBUG, logger=log.name):
        np.testing.assert_array_equal(op(v), silent(v))
        monkeypatch.setattr(iterative, "MATVEC_LOG_S", 0.0)
        op(v[:, 0])
    recs = [r for r in caplog.records if r.name == log.name]
    assert [r.levelno for r in recs] == [logging.DEBUG, logging.INFO]
    n = x.shape[0]
    assert recs[0].getMessage().startswith(f"kernel matvec 1 (n = {n}, 3 columns): ")
    assert recs[1].getMessage().startswith(f"kernel matvec 2 (n = {n}, 1 columns): ")


def test_size_guard_refuses_an_n_by_n_block():
    x = np.zeros((1000, 3))
    with pytest.raises(ValueError, match="exceeds"):
        iterative.KernelMatvec(twolayer_ntk, x, block_size=1000, max_block_bytes=10**6)
    with pytest.raises(ValueError, match="exceeds"):
        iterative.GramMatvec(np.zeros((1000, 1000)), 1000, max_block_bytes=10**6)


def test_pcg_matches_dense_kernel_regression(problem):
    """t = ∞: relative residual <= TOL; c and f_∞ at test points vs the dense eigh."""
    x, _, y, gram, spec, k_test = problem
    op = iterative.KernelMatvec(twolayer_ntk, x, block_size=256)
    c, info = iterative.solve_pcg(op, y, tol=TOL, diagonal=op.diagonal())
    assert info.converged and info.iterations == op.n_matvecs
    assert rel(gram @ c, y) <= TOL
    c_dense = predictor.coefficients(spec, y, math.inf, LR)
    assert rel(k_test @ c, k_test @ c_dense) <= TOL
    assert rel(c, c_dense) <= 1e3 * TOL  # forward error <= κ·residual, κ ~ 1e3 here
    plain, plain_info = iterative.solve_pcg(op, y, tol=TOL)
    assert rel(gram @ plain, y) <= TOL and plain_info.converged


@pytest.mark.parametrize("store", ["kernel", "gram"])
def test_block_lanczos_matches_dense_at_every_time(problem, store):
    """One Krylov basis gives c_t within TOL of the dense c_t for all grid times."""
    x, _, y, gram, spec, k_test = problem
    lam_max = float(spec.eigvals[0])
    taus, times = predictor.time_grid(lam_max, LR, -2, 3, 6)
    op = (
        iterative.KernelMatvec(twolayer_ntk, x, block_size=256)
        if store == "kernel"
        else iterative.GramMatvec(gram, block_rows=100)
    )
    kp = iterative.block_lanczos(op, y, times[:-1], LR, tol=TOL, check_every=2)
    assert kp.info.converged
    assert kp.basis.shape[1] <= kp.info.iterations * y.shape[1]
    assert abs(kp.eigval_max - lam_max) <= 1e-8 * lam_max
    for t in times[:-1]:
        c_dense = predictor.coefficients(spec, y, t, LR)
        c = kp.coefficients(t)
        assert rel(c, c_dense) <= TOL, t
        assert rel(k_test @ c, k_test @ c_dense) <= TOL, t
    # times between the grid points come from the same basis
    t_mid = float(np.sqrt(times[1] * times[2]))
    assert rel(kp.coefficients(t_mid), predictor.coefficients(spec, y, t_mid, LR)) <= (
        10 * TOL
    )


def test_block_lanczos_invariant_subspace_is_exact():
    """A rank-r Gram: the Krylov space closes after r/k blocks, c_t exact."""
    rng = np.random.default_rng(3)
    u = np.linalg.qr(rng.normal(size=(60, 6)))[0]
    gram = u @ np.diag([5.0, 3, 2, 1, 0.5, 0.1]) @ u.T
    y = u[:, :2] @ rng.normal(size=(2, 2))
    kp = iterative.block_lanczos(
        iterative.GramMatvec(gram, 7), y, [1.0, math.inf], 1.0, tol=1e-12
    )
    assert kp.info.converged
    w, v = np.linalg.eigh(gram)
    top = w > 1e-9
    for t in (0.3, 1.0, 40.0, math.inf):
        ref = v[:, top] @ (
            predictor.time_weights(w[top], t, 1.0)[:, None] * (v[:, top].T @ y)
        )
        np.testing.assert_allclose(kp.coefficients(t), ref, atol=1e-10)


def test_no_n_by_n_array_is_allocated():
    """tracemalloc peak of matvec + both solvers stays far below one n x n float64."""
    n = 1500
    x, _, y = clustered_data(n, d=20, seed=2)
    op = iterative.KernelMatvec(twolayer_ntk, x, block_size=200)
    op(y)  # compile outside the trace
    tracemalloc.start()
    try:
        c, _ = iterative.solve_pcg(op, y, tol=1e-4, diagonal=op.diagonal())
        kp = iterative.block_lanczos(op, y, [1.0, 100.0], LR, tol=1e-4)
        kp.coefficients(10.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < n * n * 8 / 4, peak


def test_bad_input_is_refused():
    op = iterative.GramMatvec(np.eye(4), 2)
    with pytest.raises(ValueError, match="shape"):
        op(np.ones((3, 1)))
    with pytest.raises(ValueError, match="tol"):
        iterative.solve_pcg(op, np.ones((4, 1)), tol=0)
    with pytest.raises(ValueError, match="positive"):
        iterative.solve_pcg(op, np.ones((4, 1)), diagonal=np.zeros(4))
    with pytest.raises(ValueError, match="square"):
        iterative.GramMatvec(np.ones((3, 4)))


def test_transfer_reference_iterative_matches_dense(tmp_path):
    """ntk_reference(solver="iterative") on a streamed h5 Gram (a subset of its
    points) gives the dense reference's f_t, loss gradients and attack accuracies."""
    import jax.numpy as jnp

    from ntkadv.kernels import jacobians
    from ntkadv.transfer.net import ntk_time
    from ntkadv.transfer.reference import ntk_reference, ntk_transfer_reference

    n_all, n = 360, 300
    x, x_test, y = clustered_data(n_all, d=30, m=12, seed=4)
    y_test = np.eye(3)[np.arange(12) % 3]
    gram = np.asarray(twolayer_ntk(x, x))
    k_test = np.asarray(twolayer_ntk(x_test, x))
    epochs = [1, 30, 1000, 30000]
    dense = ntk_reference(gram, k_test, y, LR, n)
    path = tmp_path / "gram.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("k", data=gram, chunks=(50, 50))
    with h5py.File(path, "r") as f:
        times = [ntk_time(e, n) for e in epochs] + [math.inf]
        it = ntk_reference(
            f["k"], k_test, y, LR, n, solver="iterative", times=times, tol=TOL
        )
    assert it.spectrum is None and it.n_clipped == 0
    assert abs(it.eigval_max - dense.eigval_max) <= 1e-8 * dense.eigval_max
    for t in times:
        assert rel(it.predict(t), dense.predict(t)) <= TOL, t
    jac = jacobians.input_jacobian_fn(twolayer_ntk, "twolayer")(x_test, x)
    jac = jac.train_subset(n)
    args = (twolayer_ntk, jnp.asarray(x[:n]), x_test, y_test, "multiclass", epochs)
    out_d = ntk_transfer_reference(dense, jac, *args, 0.3, align_epoch=1000)
    out_i = ntk_transfer_reference(it, jac, *args, 0.3, align_epoch=1000)
    assert rel(out_i["f"], out_d["f"]) <= TOL
    assert rel(out_i["align_f"], out_d["align_f"]) <= 10 * TOL
    assert rel(out_i["loss_grad"], out_d["loss_grad"]) <= 1e-5  # stored as float32
    for key in ("correct_clean", "correct_own", "correct_random"):
        np.testing.assert_array_equal(out_i[key], out_d[key])
    with pytest.raises(ValueError, match="solver"):
        ntk_reference(gram, k_test, y, LR, n, solver="cg")
