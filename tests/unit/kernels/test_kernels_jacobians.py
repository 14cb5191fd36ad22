"""Tests of ntkadv.kernels.jacobians: the cache D(x) = ∂Θ(x, X)/∂x (supp. Eq. 9)."""

from __future__ import annotations

import chex
import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from _shared import SPECS  # the same five architectures, one per family/depth
from ntkadv.kernels import jacobians
from ntkadv.kernels.analytic import kernel_fn_from_spec

SHAPE = (4, 4, 2)  # tiny "images" (H, W, C), d = 32
D = 32
# (arch, form): the family's own form, plus the dense form of the factored families
CASES = [(a, jacobians.jacobian_form(s["family"])) for a, s in SPECS.items()]
CASES += [("fc3", "dense"), ("twolayer", "dense")]


def _data(m=5, n=7, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.uniform(size=(m, *SHAPE)),
        rng.uniform(size=(n, *SHAPE)),
        rng.standard_normal((n, k)),
    )


def _autodiff_contract(kernel_fn, x_eval, x_train, c):
    """∇_{x_i} Σ_j Θ(x_i, x_j) c_jk by reverse mode through kernel_fn: (m, d, K)."""

    def row(xi):
        return kernel_fn(xi[None], x_train)[0] @ c  # (K,)

    jac = jax.vmap(jax.jacrev(row))(jnp.asarray(x_eval))  # (m, K, *SHAPE)
    return np.swapaxes(np.asarray(jac).reshape(len(x_eval), c.shape[1], -1), 1, 2)


@pytest.mark.parametrize(("arch", "form"), CASES)
def test_contract_matches_autodiff(arch, form):
    x_eval, x_train, c = _data()
    kernel_fn = kernel_fn_from_spec(SPECS[arch])
    jac = jacobians.input_jacobian_fn(kernel_fn, form)(x_eval, x_train, 3)
    assert (jac.form, jac.m, jac.n, jac.d) == (form, 5, 7, D)
    got = jac.contract(c)
    chex.assert_shape(got, (5, D, 3))
    chex.assert_tree_all_finite(got)
    ref = _autodiff_contract(kernel_fn, x_eval, x_train, c)
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12 * np.abs(ref).max())
    np.testing.assert_allclose(jac.contract(c[:, 0]), got[:, :, 0], rtol=1e-12)


@pytest.mark.parametrize("arch", sorted(SPECS))
def test_contract_matches_central_differences(arch):
    """Directional derivatives of x ↦ Σ_j Θ(x, x_j) c_j vs central differences."""
    x_eval, x_train, c = _data(m=3, seed=1)
    kernel_fn = kernel_fn_from_spec(SPECS[arch])
    form = jacobians.jacobian_form(SPECS[arch]["family"])
    got = jacobians.input_jacobian_fn(kernel_fn, form)(x_eval, x_train, 4).contract(c)
    v = np.random.default_rng(2).standard_normal((3, *SHAPE))
    h = 1e-5
    fd = (
        np.asarray(kernel_fn(x_eval + h * v, x_train)) @ c
        - np.asarray(kernel_fn(x_eval - h * v, x_train)) @ c
    ) / (2 * h)  # (m, K): row i only depends on x_eval[i]
    directional = np.einsum("mdk,md->mk", got, v.reshape(3, -1))
    np.testing.assert_allclose(directional, fd, rtol=1e-6, atol=1e-9 * np.abs(fd).max())


@pytest.mark.parametrize("arch", ["fc1", "fc3", "twolayer"])
def test_factored_degenerate_pairs(arch):
    """x_j = x_i, x_j = 2 x_i (parallel) and x_i = 0 use the min-norm fallback."""
    x_eval, x_train, c = _data()
    x_train[0] = x_eval[0]
    x_train[1] = 2.0 * x_eval[1]
    x_eval[2] = 0.0
    kernel_fn = kernel_fn_from_spec(SPECS[arch])
    factored = jacobians.input_jacobian_fn(kernel_fn, "factored")(x_eval, x_train, 4)
    dense = jacobians.input_jacobian_fn(kernel_fn, "dense")(x_eval, x_train, 4)
    ref = _autodiff_contract(kernel_fn, x_eval, x_train, c)
    # nt's angle at an exactly parallel pair comes from sqrt(rounding noise): ~1e-8
    tol = 1e-12 if arch == "twolayer" else 1e-7
    scale = np.abs(ref).max()
    for jac in (factored, dense):
        chex.assert_tree_all_finite(jac.contract(c))
        np.testing.assert_allclose(jac.contract(c), ref, atol=tol * scale, rtol=0)
    # per-pair: the dense gradient of the coincident pair is a x_i + b x_j
    np.testing.assert_allclose(
        factored.rows(0, 1)[0, :2], dense.rows(0, 1)[0, :2], atol=tol * scale
    )


def test_solve_factored_recovers_coefficients():
    """Random (a, b) and vectors: u = ∇·x_i, v = ∇·x_j give back a, b; parallel → ∇."""
    rng = np.random.default_rng(3)
    xi, xj = rng.standard_normal((2, 50, 9))
    a, b = rng.standard_normal((2, 50))
    grad = a[:, None] * xi + b[:, None] * xj
    p, q, s = (np.einsum("nd,nd->n", *pair) for pair in [(xi, xi), (xj, xj), (xi, xj)])
    u, v = np.einsum("nd,nd->n", grad, xi), np.einsum("nd,nd->n", grad, xj)
    got_a, got_b = jacobians.solve_factored(u, v, p, q, s)
    np.testing.assert_allclose(got_a, a, rtol=1e-10)
    np.testing.assert_allclose(got_b, b, rtol=1e-10)
    xj_par = -3.0 * xi  # parallel: only a − 3b is identifiable; ∇ must still match
    q2, s2 = 9.0 * p, -3.0 * p
    grad2 = a[:, None] * xi + b[:, None] * xj_par
    u2, v2 = np.einsum("nd,nd->n", grad2, xi), np.einsum("nd,nd->n", grad2, xj_par)
    a2, b2 = jacobians.solve_factored(u2, v2, p, q2, s2)
    np.testing.assert_allclose(
        a2[:, None] * xi + b2[:, None] * xj_par, grad2, atol=1e-10
    )
    np.testing.assert_allclose(np.hypot(a2, b2) ** 2, (a - 3 * b) ** 2 / 10, rtol=1e-10)


@pytest.mark.parametrize(("arch", "form"), [("fc1", "factored"), ("conv1", "dense")])
def test_block_size_and_repeat_do_not_change_result(arch, form):
    """Same input twice → identical arrays; other (non-divisible) blocks → same."""
    x_eval, x_train, _ = _data(m=7, n=9)
    kernel_fn = kernel_fn_from_spec(SPECS[arch])
    build = jacobians.input_jacobian_fn(kernel_fn, form)
    first, again = build(x_eval, x_train, 4), build(x_eval, x_train, 4)
    other = build(x_eval, x_train, 20)
    for key in ("a", "b", "dense"):
        x, y, z = (getattr(j, key) for j in (first, again, other))
        if x is not None:
            np.testing.assert_array_equal(x, y)
            np.testing.assert_allclose(x, z, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("arch", ["fc1", "conv1"])
def test_file_roundtrip(arch, tmp_path):
    """write → load gives the in-memory contraction (dense: recomputed tiles rounded
    to float32, as the former stored cache); the dense file holds no Jacobian."""
    x_eval, x_train, c = _data()
    kernel_fn = kernel_fn_from_spec(SPECS[arch])
    form = jacobians.jacobian_form(SPECS[arch]["family"])
    path = tmp_path / "jacobian.h5"
    attrs = {"arch": arch, "arch_spec": SPECS[arch]}
    jacobians.write_input_jacobian(path, kernel_fn, form, x_eval, x_train, 3, attrs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jacobian.h5"]
    loaded = jacobians.load_input_jacobian(path)
    memory = jacobians.input_jacobian_fn(kernel_fn, form)(x_eval, x_train, 3)
    assert (loaded.form, loaded.m, loaded.n, loaded.d) == (form, 5, 7, D)
    ref = memory.contract(c)
    tol = 1e-12 if form == "factored" else 1e-6  # float32 tiles
    np.testing.assert_allclose(
        loaded.contract(c), ref, rtol=tol, atol=tol * np.abs(ref).max()
    )
    with h5py.File(path) as f:
        assert f.attrs["arch"] == arch and f.attrs["form"] == form
        assert "jacobian" not in f
        if form == "dense":
            assert f.attrs["storage"] == "implicit" and f.attrs["seconds_per_pair"] > 0
            assert sorted(f) == ["x_eval", "x_train"]
        else:
            assert f["a"].dtype == np.float64
    second = tmp_path / "again.h5"
    jacobians.write_input_jacobian(
        second, kernel_fn, form, x_eval, x_train, 3, {"arch": arch}
    )
    with h5py.File(path) as f, h5py.File(second) as g:
        for key in f:
            np.testing.assert_array_equal(f[key][()], g[key][()])


@pytest.mark.parametrize("block", [1, 2, 3, 7, 50])
@pytest.mark.parametrize("arch", ["conv1", "fc1"])
def test_implicit_contract_equals_the_dense_reference_rounded_to_float32(arch, block):
    """`ImplicitJacobian.contract` = the materialised dense D (rounded to float32,
    the former cache) contracted with C, for every tiling (block sizes that do and
    do not divide m = 5, n = 7); and = `jax.jacrev` to float32 precision."""
    x_eval, x_train, c = _data()
    kernel_fn = kernel_fn_from_spec(SPECS[arch])
    dense = jacobians.input_jacobian_fn(kernel_fn, "dense")(x_eval, x_train, 3)
    implicit = jacobians.ImplicitJacobian(
        kernel_fn, x_eval.reshape(5, D), x_train.reshape(7, D), SHAPE, block
    )
    rounded = dense.dense.astype(np.float32).astype(np.float64)
    ref = np.swapaxes(rounded, 1, 2) @ c
    got = implicit.contract(c)
    chex.assert_shape(got, (5, D, 3))
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-14 * np.abs(ref).max())
    np.testing.assert_array_equal(implicit.rows(1, 4), rounded[1:4])
    auto = _autodiff_contract(kernel_fn, x_eval, x_train, c)
    np.testing.assert_allclose(got, auto, rtol=1e-5, atol=1e-6 * np.abs(auto).max())
    # the same for the restrictions every consumer uses
    sub = implicit.eval_subset(2, 4).train_subset(5)
    np.testing.assert_allclose(
        sub.contract(c[:5]),
        np.swapaxes(rounded[2:4, :5], 1, 2) @ c[:5],
        rtol=1e-12,
        atol=1e-14 * np.abs(ref).max(),
    )


def test_implicit_contract_memory_is_bounded_by_the_tile(monkeypatch):
    """No intermediate of m·n·d floats: the tile function only ever sees
    (rows, block, *shape) inputs (rows = `dense_tile_rows`)."""
    x_eval, x_train, c = _data(m=6, n=9)
    kernel_fn = kernel_fn_from_spec(SPECS["conv1"])
    seen = []
    tile = jacobians._jitted_tile_fn(kernel_fn, "dense")

    def spy(xe, xt):
        seen.append((xe.shape[0], xt.shape[0]))
        return tile(xe, xt)

    implicit = jacobians.ImplicitJacobian(
        kernel_fn, x_eval.reshape(6, D), x_train.reshape(9, D), SHAPE, 4
    )
    monkeypatch.setattr(jacobians, "_jitted_tile_fn", lambda *a: spy)
    implicit.contract(c)
    rows = jacobians.dense_tile_rows(4, 9, D)
    assert set(seen) == {(rows, 4)} and len(seen) == -(-6 // rows) * 3


def test_bad_arguments():
    with pytest.raises(ValueError):
        jacobians.jacobian_form("rbf")
    x_eval, x_train, c = _data()
    kernel_fn = kernel_fn_from_spec(SPECS["fc1"])
    jac = jacobians.input_jacobian_fn(kernel_fn, "fc")(x_eval, x_train)
    with pytest.raises(ValueError):
        jac.contract(c[:3])
    with pytest.raises(ValueError):
        next(jacobians.iter_input_jacobian_blocks(kernel_fn, "sparse", x_eval, x_train))


# ---------------------------------------------------------------- restrictions


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    """{(form, storage): cache} of fc1 (m = 5, n = 7), memory and disk (the dense
    form on disk is an `ImplicitJacobian`, recomputed from the stored inputs)."""
    x_eval, x_train, _ = _data()
    out = {}
    for form in ("factored", "dense"):
        kernel_fn = kernel_fn_from_spec(SPECS["fc1"])
        out[form, "memory"] = jacobians.input_jacobian_fn(kernel_fn, form)(
            x_eval, x_train, 3
        )
        path = tmp_path_factory.mktemp(form) / "jacobian.h5"
        attrs = {"arch_spec": SPECS["fc1"]}
        jacobians.write_input_jacobian(path, kernel_fn, form, x_eval, x_train, 3, attrs)
        out[form, "disk"] = jacobians.load_input_jacobian(path)
    return out


def _coefficients(n, k=3, seed=4):
    return np.random.default_rng(seed).standard_normal((n, k))


@pytest.mark.parametrize("storage", ["memory", "disk"])
@pytest.mark.parametrize("form", ["factored", "dense"])
@pytest.mark.parametrize(("i0", "i1"), [(0, 5), (0, 2), (2, 5), (1, 4)])
def test_eval_subset_contracts_like_the_rows_of_the_full_cache(
    caches, form, storage, i0, i1
):
    jac = caches[form, storage]
    c = _coefficients(jac.n)
    full = jac.contract(c)
    sub = jac.eval_subset(i0, i1)
    assert (sub.form, sub.m, sub.n, sub.d) == (form, i1 - i0, 7, D)
    got = sub.contract(c)
    chex.assert_shape(got, (i1 - i0, D, 3))
    scale = np.abs(full).max()
    np.testing.assert_allclose(got, full[i0:i1], rtol=1e-12, atol=1e-14 * scale)
    np.testing.assert_allclose(
        sub.rows(0, i1 - i0), jac.rows(i0, i1), rtol=1e-12, atol=1e-14
    )
    # nested restrictions compose (the dense file form offsets its rows)
    if i1 - i0 >= 2:
        inner = sub.eval_subset(1, 2).contract(c)
        np.testing.assert_allclose(
            inner, full[i0 + 1 : i0 + 2], rtol=1e-12, atol=1e-14 * scale
        )


@pytest.mark.parametrize("storage", ["memory", "disk"])
@pytest.mark.parametrize("form", ["factored", "dense"])
def test_empty_eval_subset_contracts_to_an_empty_array(caches, form, storage):
    sub = caches[form, storage].eval_subset(3, 3)
    assert (sub.m, sub.n, sub.d) == (0, 7, D)
    chex.assert_shape(sub.rows(0, 0), (0, 7, D))
    chex.assert_shape(sub.contract(_coefficients(7)), (0, D, 3))


@pytest.mark.parametrize("storage", ["memory", "disk"])
@pytest.mark.parametrize("form", ["factored", "dense"])
@pytest.mark.parametrize("n_sub", [1, 4, 7])
def test_train_subset_contracts_like_zero_padded_coefficients(
    caches, form, storage, n_sub
):
    """Σ_{j < n_sub} ∇Θ(x_i, x_j) c_j: the full contraction with c_j = 0 for j >= n."""
    jac = caches[form, storage]
    c = _coefficients(n_sub)
    padded = np.zeros((jac.n, 3))
    padded[:n_sub] = c
    full = jac.contract(padded)
    sub = jac.train_subset(n_sub)
    assert (sub.form, sub.m, sub.n, sub.d) == (form, 5, n_sub, D)
    got = sub.contract(c)
    chex.assert_shape(got, (5, D, 3))
    scale = np.abs(full).max()
    np.testing.assert_allclose(got, full, rtol=1e-12, atol=1e-14 * scale)
    np.testing.assert_allclose(
        sub.rows(0, 5), jac.rows(0, 5)[:, :n_sub], rtol=1e-12, atol=1e-14
    )
    # either order of the two restrictions gives the same block
    for both in (sub.eval_subset(1, 4), jac.eval_subset(1, 4).train_subset(n_sub)):
        np.testing.assert_allclose(
            both.contract(c), full[1:4], rtol=1e-12, atol=1e-14 * scale
        )
    if n_sub < jac.n:
        with pytest.raises(ValueError):
            sub.contract(padded)  # coefficients of the restricted cache only


@pytest.mark.parametrize("storage", ["memory", "disk"])
@pytest.mark.parametrize("form", ["factored", "dense"])
def test_restrictions_reject_out_of_range_arguments(caches, form, storage):
    jac = caches[form, storage]
    for i0, i1 in ((-1, 2), (3, 2), (0, 6), (6, 6)):
        with pytest.raises(ValueError, match="outside"):
            jac.eval_subset(i0, i1)
    for n_sub in (0, -1, 8):
        with pytest.raises(ValueError, match="outside"):
            jac.train_subset(n_sub)
    with pytest.raises(ValueError, match="outside"):
        jac.train_subset(4).train_subset(5)
