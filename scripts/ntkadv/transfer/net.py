"""Wide two-layer ReLU nets versus their NTK (Tsilivis & Kempe 2022, §3.2, supp. C).

Network (supp. Eq. 28), on flattened inputs x ∈ R^d::

    f(x) = m^{-1/2} Aᵀ relu(W x),   W (m, d) ~ N(0, w_std²) trained,
                                     A (m, k) ∈ {±1} frozen at initialisation.

Its NTK is supp. Eq. 29 (`ntkadv.kernels.twolayer_ntk`), independent of w_std, and
Θ ⊗ I_k for k outputs (the cross terms (1/m) Σ_r A_rj A_rj' vanish as m → ∞).

Training: full-batch gradient descent with a fixed learning rate η (`lr`) on the
MEAN squared loss L(W) = (1/n) Σ_i ½‖f(x_i) − y_i‖².

Time alignment with the NTK predictor (supp. Eq. 3). One GD epoch on the mean
loss moves the training outputs by −(η/n) Θ̂ (f(X) − Y) to first order, so in the
lazy regime f_τ − f_0 ≈ Θ(x, X) Θ⁻¹ (I − e^{−η Θ τ / n}) (Y − f_0(X)): epoch τ is
NTK time t = τ / n at learning rate η (`ntk_time`). With the SUM of squared errors
the time would be t = τ, but GD is then only stable for η λ_max(Θ) < 2, and
λ_max(Θ) grows like n (≈ 12 n on MNIST, ≈ 360 n on CIFAR pixels in [0, 1]), so
η = 1e-2 diverges at once; with the mean the condition is η λ_max(Θ) / n < 2
(see `gd_stability`). Even the mean fails on CIFAR pixels at η = 1e-2
(η λ_max / n ≈ 3.6: measured at n = 300, width 10³, the loss jumps from 0.77 to 2.5
at epoch 2 and the net leaves the lazy regime, gradient cosine ≈ 0), so the workflow
lowers η there (config ``transfer.lr_overrides``). The paper instead aligned one
epoch (10³) to an NTK time by hand and scaled linearly; `fit_time_factor` measures
how far the analytic t = τ / n is from the best such hand alignment. As in the
paper, the predictor uses the targets Y (not Y − f_0(X)) and net quantities use
f − f_0.

Row-space parameterisation (exact, a speed-up). Every gradient of L with respect to
W is a combination of the training inputs, so W_τ = W_0 + C_τ Vᵀ with V (d, r) an
orthonormal basis of the row space of X (`row_space_basis`) and C (m, r), C_0 = 0.
GD on W is GD on C with the loss L(W_0 + C Vᵀ), and each epoch costs O(n r m)
instead of O(n d m) with r = rank(X) ≤ min(n, d) (and the small updates are not
rounded away against W_0 in float32). `first_layer` rebuilds W.

Dual coordinates (exact; the job's loop when n <= 2 r, `experiment.gd_loop`).
Every update of C is −η Δᵀ P with Δ (n, m) the loss gradient with respect to the
training pre-activations, so
C_τ = α_τᵀ P with α (n, m), α_0 = 0, and the pre-activations are z0 + G α with
G = P Pᵀ (n, n): one epoch is one (n, n) @ (n, m) product (`gd_dual_run_fn`),
2 n² m flops instead of the 4 n r m of a forward and a backward product in C.
`coordinates` gives C = αᵀ P at the evaluation epochs.

The net quantity compared with the NTK is g(x) = f_W(x) − f_{W_0}(x) (`difference_fn`)
as a function of x; its input loss gradient is obtained by autodiff and compared
with the NTK's (supp. Eqs. 5, 8, 9) by cosine similarity (supp. Eq. 30).

Shapes: n training points, b evaluation points, d input dim, m width, k outputs,
r row-space rank.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ntkadv.losses import loss, loss_output_gradient
from ntkadv.typing import Task

# ---------------------------------------------------------------- the network


class TwoLayerNet(NamedTuple):
    """Initial state of the net of supp. Eq. 28.

    Attributes:
        w0: (m, d) first layer at initialisation, N(0, w_std²).
        a: (m, k) frozen second layer, entries ±1.
    """

    w0: jax.Array
    a: jax.Array


def init_net(
    key: jax.Array,
    d: int,
    m: int,
    k: int,
    w_std: float = 0.01,
    dtype: Any = jnp.float32,
) -> TwoLayerNet:
    """Draw W_0 ~ N(0, w_std²) (m, d) and A uniform on {±1}^{m×k} (supp. Eq. 28).

    Args:
        key: PRNG key (split into one key per layer).
        d: input dimension.
        m: width.
        k: number of outputs (1 for binary, number of classes for multiclass).
        w_std: standard deviation of the first layer (0.01 in the paper).
        dtype: parameter dtype.
    """
    dtype = jnp.dtype(dtype)
    key_w, key_a = jax.random.split(key)
    w0 = w_std * jax.random.normal(key_w, (m, d), dtype)
    a = jnp.where(jax.random.bernoulli(key_a, 0.5, (m, k)), 1.0, -1.0).astype(dtype)
    return TwoLayerNet(w0=w0, a=a)


def apply(w: jax.Array, a: jax.Array, x: jax.Array) -> jax.Array:
    """f(x) = m^{-1/2} Aᵀ relu(W x) for a batch, supp. Eq. 28.

    Args:
        w: (m, d) first layer.
        a: (m, k) second layer.
        x: (b, d) flattened inputs.

    Returns:
        (b, k) outputs.
    """
    m = w.shape[0]
    return jax.nn.relu(x @ w.T) @ a / math.sqrt(m)


def mse_loss(w: jax.Array, a: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """Mean squared loss (1/n) Σ_i ½‖f(x_i) − y_i‖² (scalar)."""
    r = apply(w, a, x) - y
    return 0.5 * jnp.mean(jnp.sum(r * r, axis=1))


def mse_grad(w: jax.Array, a: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """Closed-form ∂L/∂W (m, d) of `mse_loss` (the reference for autodiff).

    ∂L/∂w_r = (1/(n √m)) Σ_i 1[w_rᵀx_i > 0] (a_rᵀ (f(x_i) − y_i)) x_i.
    """
    n, m = x.shape[0], w.shape[0]
    pre = x @ w.T  # (n, m)
    r = apply(w, a, x) - y  # (n, k)
    back = (r @ a.T) * (pre > 0)  # (n, m)
    return back.T @ x / (n * math.sqrt(m))


def gd_stability(eigvals_max: float, n: int, lr: float) -> float:
    """η λ_max(Θ) / n: GD on the (linearised) mean loss is stable iff this is < 2."""
    return float(lr * eigvals_max / n)


def ntk_time(epoch: float, n: int) -> float:
    """NTK training time t of supp. Eq. 3 after `epoch` GD epochs on the mean loss."""
    return float(epoch) / n


# ---------------------------------------------------------------- row-space GD


def row_space_basis(x: np.ndarray, rtol: float | None = None) -> np.ndarray:
    """Orthonormal basis V (d, r) of the row space of the training inputs.

    Args:
        x: (n, d) flattened training inputs.
        rtol: directions whose pivoted-QR diagonal |R_ii| is below rtol·|R_00| are
            dropped (default max(n, d)·ε_float64, the numerical rank).

    Returns:
        (d, r) float64 with orthonormal columns.
    """
    import scipy.linalg

    x = np.asarray(x, dtype=np.float64)
    q, r, _ = scipy.linalg.qr(x.T, mode="economic", pivoting=True)
    diag = np.abs(np.diag(r))
    if rtol is None:
        rtol = max(x.shape) * float(np.finfo(np.float64).eps)
    rank = int(np.sum(diag > rtol * (diag[0] if diag.size else 0.0)))
    return np.ascontiguousarray(q[:, :rank])


def first_layer(net: TwoLayerNet, basis: jax.Array, c: jax.Array) -> jax.Array:
    """W = W_0 + C Vᵀ (m, d) from the row-space coordinates C (m, r)."""
    return net.w0 + c @ basis.T


def reduced_loss(
    c: jax.Array, a: jax.Array, z0: jax.Array, p: jax.Array, y: jax.Array
) -> jax.Array:
    """`mse_loss` at W = W_0 + C Vᵀ from z0 = X W_0ᵀ (n, m) and p = X V (n, r)."""
    f = jax.nn.relu(z0 + p @ c.T) @ a / math.sqrt(a.shape[0])
    r = f - y
    return 0.5 * jnp.mean(jnp.sum(r * r, axis=1))


class GDProblem(NamedTuple):
    """Precomputed full-batch GD problem in row-space coordinates.

    Attributes:
        a: (m, k) frozen second layer.
        z0: (n, m) pre-activations X W_0ᵀ at initialisation.
        p: (n, r) training inputs in the row-space basis, X V.
        y: (n, k) targets.
    """

    a: jax.Array
    z0: jax.Array
    p: jax.Array
    y: jax.Array


def gd_problem(
    net: TwoLayerNet,
    basis: jax.Array,
    x_train: jax.Array,
    y_train: jax.Array,
    w0t: jax.Array | None = None,
) -> GDProblem:
    """Precompute z0 = X W_0ᵀ and p = X V in the net's dtype.

    `w0t` (d, m), W_0ᵀ stored contiguously, makes the (n, d) @ (d, m) product take
    the fast layout (`outputs_fn_t`); the result is the same.
    """
    dtype = net.w0.dtype
    x = jnp.asarray(x_train, dtype)
    return GDProblem(
        a=net.a,
        z0=x @ (net.w0.T if w0t is None else w0t),
        p=x @ jnp.asarray(basis, dtype),
        y=jnp.asarray(y_train, dtype),
    )


def gd_run_fn(lr: float) -> Callable[[jax.Array, GDProblem, jax.Array], jax.Array]:
    """Pure (c, problem, steps) -> c after `steps` full-batch GD epochs (jit it).

    One epoch: C ← C − lr ∂L/∂C with ∂L/∂C = (∂L/∂W) V, i.e. exactly one GD step on
    W restricted to W_0 + span(V). `steps` may be a traced integer (a
    ``lax.fori_loop``), so one compiled function serves every interval between
    evaluation epochs.
    """
    grad = jax.grad(reduced_loss)
    lr = float(lr)  # a Python scalar keeps C in its dtype (weak typing)

    def run(c: jax.Array, problem: GDProblem, steps: jax.Array) -> jax.Array:
        def body(_, c):
            g = grad(c, problem.a, problem.z0, problem.p, problem.y)
            return c - lr * g

        return jax.lax.fori_loop(0, steps, body, c)

    return run


def gd_dual_run_fn(
    lr: float,
) -> Callable[[jax.Array, GDProblem, jax.Array, jax.Array], jax.Array]:
    """Pure (alpha, problem, gram, steps) -> alpha after `steps` GD epochs (jit it).

    The same full-batch GD as `gd_run_fn`, in dual coordinates: every update of C is
    −lr ∂L/∂C = −lr Δᵀ P with Δ = ∂L/∂Z (n, m) the loss gradient with respect to the
    training pre-activations Z = z0 + P Cᵀ, so C_τ = α_τᵀ P with α (n, m), α_0 = 0,
    and one epoch is

        Z = z0 + G α,   G = P Pᵀ (n, n) (`dual_gram`),
        f = relu(Z) A / √m,   Δ = ((f − Y) Aᵀ / (n √m)) ⊙ 1[Z > 0],
        α ← α − lr Δ,

    i.e. ONE (n, n) @ (n, m) product (2 n² m flops) instead of the forward P Cᵀ and
    the backward Δᵀ P of `gd_run_fn` (4 n r m; r = n at the laptop scale), with the
    gradient of `reduced_loss` written out (relu'(0) = 0, as jax's). `coordinates`
    turns α into C at the evaluation epochs. `steps` may be traced (one compiled
    ``lax.fori_loop`` for every interval between evaluation epochs).
    """
    lr = float(lr)  # a Python scalar keeps alpha in its dtype (weak typing)

    def run(
        alpha: jax.Array, problem: GDProblem, gram: jax.Array, steps: jax.Array
    ) -> jax.Array:
        a, z0, y = problem.a, problem.z0, problem.y
        scale = 1.0 / math.sqrt(a.shape[0])
        n = z0.shape[0]

        def body(_, alpha):
            z = z0 + gram @ alpha
            f = jax.nn.relu(z) @ a * scale
            delta = ((f - y) @ a.T) * (z > 0) * (scale / n)
            return alpha - lr * delta

        return jax.lax.fori_loop(0, steps, body, alpha)

    return run


def dual_gram(problem: GDProblem) -> jax.Array:
    """G = P Pᵀ (n, n) = X V Vᵀ Xᵀ, the Gram matrix of `gd_dual_run_fn` (net dtype)."""
    return problem.p @ problem.p.T


def coordinates(alpha: jax.Array, problem: GDProblem) -> jax.Array:
    """Row-space coordinates C = αᵀ P (m, r) of the dual coordinates α (n, m)."""
    return alpha.T @ problem.p


# ---------------------------------------------------------------- net quantities


def difference_fn(
    net: TwoLayerNet, basis: jax.Array
) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """Pure (c, x (b, d)) -> g(x) = f_W(x) − f_{W_0}(x) (b, k), W = W_0 + C Vᵀ.

    The net with its initial prediction subtracted, as a function of the input
    (supp. App. C): this is the model whose loss gradients and attacks are compared
    with the NTK predictor f_t (which starts from f = 0).
    """
    w0, a = net.w0, net.a
    scale = 1.0 / math.sqrt(w0.shape[0])

    def g(c: jax.Array, x: jax.Array) -> jax.Array:
        x = x.astype(w0.dtype)
        z0 = x @ w0.T
        z = z0 + (x @ basis.astype(w0.dtype)) @ c.T
        return (jax.nn.relu(z) - jax.nn.relu(z0)) @ a * scale

    return g


def loss_input_gradient_fn(
    net: TwoLayerNet, basis: jax.Array, task: Task
) -> Callable[[jax.Array, jax.Array, jax.Array], jax.Array]:
    """Pure (c, x (b, d), y (b, k)) -> ∇ₓ L(g(x_i), y_i) (b, d) by autodiff.

    L is the cross-entropy of supp. Eq. 4 (binary, y ±1) or Eq. 7 (multiclass,
    one-hot y), `ntkadv.losses.loss`; the examples are independent, so the
    gradient of the summed loss is the stack of per-example gradients.
    """
    g = difference_fn(net, basis)

    def total(x, c, y):
        return jnp.sum(loss(g(c, x), y.astype(x.dtype), task))

    grad = jax.grad(total)

    def loss_grad(c: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
        return grad(x, c, y)

    return loss_grad


def outputs_fn_t(
    w0t: jax.Array,
    a: jax.Array,
    basis: jax.Array,
    c: jax.Array,
    x: jax.Array,
    z0: jax.Array | None = None,
) -> jax.Array:
    """g(x) = f_W(x) − f_{W_0}(x) (b, k) from the transposed first layer W_0ᵀ (d, m).

    The same function as `difference_fn`. XLA:CPU multiplies (b, d) @ (d, m) about
    3.5x faster than (b, d) @ (m, d)ᵀ at d = 3072, m = 10⁴ (benchmarks/
    bench_twolayer.py), so the evaluation keeps both layouts of W_0. `z0` (b, m),
    x W_0ᵀ, may be passed when it is fixed across evaluations (the test points, the
    random-sign batch): it is then not recomputed (2 b d m flops).
    """
    scale = 1.0 / math.sqrt(a.shape[0])
    z0 = x @ w0t if z0 is None else z0
    z = z0 + (x @ basis.astype(w0t.dtype)) @ c.T
    return (jax.nn.relu(z) - jax.nn.relu(z0)) @ a * scale


def outputs_and_loss_gradient(
    net: TwoLayerNet,
    w0t: jax.Array,
    basis: jax.Array,
    c: jax.Array,
    x: jax.Array,
    y: jax.Array,
    task: Task,
    z0: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """(g(x) (b, k), ∇ₓ L(g(x_i), y_i) (b, d)) in closed form, both W_0 layouts.

    With u_i = ∂L/∂g (σ(g) − ŷ or softmax(g) − y, `ntkadv.losses`) and
    β = (u Aᵀ / √m) (b, m), W = W_0 + C Vᵀ:

        ∇ₓ L = (β ⊙ 1[x Wᵀ > 0] − β ⊙ 1[x W_0ᵀ > 0]) W_0 + ((β ⊙ 1[x Wᵀ > 0]) C) Vᵀ

    (the autodiff gradient of `loss_input_gradient_fn`, with relu'(0) = 0). Every
    product has the fast layout: (b, d) @ (d, m) forward, (b, m) @ (m, d) backward.
    Jit with ``static_argnames="task"``; the parameters are then inputs of the
    compiled function, not constants folded into it (folding the (m, d) first layer
    took ~25 s per compilation at m = 10⁴, d = 3072).

    Args:
        net: w0 (m, d), a (m, k).
        w0t: (d, m) W_0ᵀ (contiguous).
        basis: (d, r) row-space basis V.
        c: (m, r) coordinates C.
        x: (b, d) inputs.
        y: (b, k) targets.
        task: "binary" or "multiclass".
        z0: (b, m) x W_0ᵀ if precomputed (fixed inputs; as `outputs_fn_t`).
    """
    dtype = w0t.dtype
    v = basis.astype(dtype)
    scale = 1.0 / math.sqrt(net.a.shape[0])
    z0 = x @ w0t if z0 is None else z0
    z = z0 + (x @ v) @ c.T
    out = (jax.nn.relu(z) - jax.nn.relu(z0)) @ net.a * scale
    u = loss_output_gradient(out, y.astype(dtype), task, backend="jax")
    beta = (u @ net.a.T) * scale
    on, on0 = beta * (z > 0), beta * (z0 > 0)
    grad = (on - on0) @ net.w0 + (on @ c) @ v.T
    return out, grad


def cosine_similarity(u, v) -> np.ndarray:
    """Row-wise cosine similarity uᵀv / (‖u‖ ‖v‖), supp. Eq. 30.

    Args:
        u: (b, d) first gradients (e.g. the NTK's ∇ₓL(f_t, y)).
        v: (b, d) second gradients (e.g. the net's ∇ₓL(f − f_0, y)).

    Returns:
        (b,) float64; NaN where either row is exactly zero.
    """
    u = np.asarray(u, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    norms = np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1)
    dots = np.sum(u * v, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0), np.nan)
