"""Helpers shared by several unit-test modules (imported as ``from _shared import``).

* `SPECS`: one architecture per family / depth (kernels, Jacobian caches);
* smooth stand-in kernels, a tiny regression problem and an autodiff Jacobian cache
  (predictor, attacks), and `kernel_machine`, one trained kernel machine with its
  outputs and input gradients on test points (attacks);
* `feature_problem`: a tiny kernel problem with its spectrum and a brute-force
  Jacobian (features), and `reference_loss`, the cross-entropy written out.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ntkadv.kernels.analytic import kernel_fn_from_spec
from ntkadv.spectra import eigh, predictor

# ---------------------------------------------------------------- architectures

#: The architectures of the kernel tests, at least one per registry family.
SPECS = {
    "fc1": {"family": "fc", "depth": 1},
    "fc3": {"family": "fc", "depth": 3},
    "conv1": {"family": "conv", "depth": 1},
    "conv2": {"family": "conv", "depth": 2},
    "myrtle1": {"family": "myrtle", "depth": 1},
    "twolayer": {"family": "twolayer"},
}

# ---------------------------------------------------------------- smooth kernels

IMAGE_SHAPE = (3, 3, 2)  # tiny "images" (H, W, C) of the regression problems
TASKS = {1: "binary", 3: "multiclass"}


def rbf_kernel_fn(x1, x2):
    """A smooth stand-in for an analytic NTK: exp(-|x - x'|^2 / d) on (n, H, W, C)."""
    a, b = x1.reshape(x1.shape[0], -1), x2.reshape(x2.shape[0], -1)
    sq = jnp.sum(a**2, 1)[:, None] + jnp.sum(b**2, 1)[None, :] - 2.0 * a @ b.T
    return jnp.exp(-sq / a.shape[1])


def poly_kernel_fn(x1, x2):
    a, b = x1.reshape(x1.shape[0], -1), x2.reshape(x2.shape[0], -1)
    return (a @ b.T / a.shape[1] + 0.5) ** 2


KERNELS = {"rbf": rbf_kernel_fn, "poly": poly_kernel_fn}


class JacobianFromAutodiff:
    """In-test input-Jacobian cache: D[i, :, j] = ∇_{x_i} Θ(x_i, x_j) by jacrev."""

    def __init__(self, kernel_fn, x, x_train):
        def row(xi):
            return kernel_fn(xi[None], x_train)[0]  # (n,)

        jac = jax.vmap(jax.jacrev(row))(jnp.asarray(x))  # (m, n, H, W, C)
        self.d = np.asarray(jac).reshape(x.shape[0], x_train.shape[0], -1)

    def contract(self, c):
        return np.einsum("mnd,nk->mdk", self.d, c)


def regression_data(n=20, m=5, k=3, seed=0):
    """Training inputs (n, *IMAGE_SHAPE), test inputs (m, ...), targets (n, k)."""
    rng = np.random.default_rng(seed)
    x_train = rng.uniform(size=(n, *IMAGE_SHAPE))
    x_test = rng.uniform(size=(m, *IMAGE_SHAPE))
    y = np.eye(k)[rng.integers(0, k, n)] if k > 1 else rng.choice([-1.0, 1.0], (n, 1))
    return x_train, x_test, y


def kernel_machine(kernel, k, t, seed=0, m=6):
    """f_t of a smooth kernel on 24 points: (kernel_fn, x_train, x_test, c, y, f, ∇f).

    y are random test targets, f (m, k) = f_t(x_test), ∇f (m, d, k) from
    `JacobianFromAutodiff`.
    """
    x_train, x_test, y_train = regression_data(n=24, m=m, k=k, seed=seed)
    kernel_fn = KERNELS[kernel]
    spec = eigh.eigendecompose(np.asarray(kernel_fn(x_train, x_train)))
    c = predictor.coefficients(spec, y_train, t, lr=1.0)
    rng = np.random.default_rng(seed + 10)
    y = np.eye(k)[rng.integers(0, k, m)] if k > 1 else rng.choice([-1.0, 1.0], (m, 1))
    f = np.asarray(kernel_fn(x_test, x_train)) @ c
    grad_f = JacobianFromAutodiff(kernel_fn, x_test, x_train).contract(c)
    return kernel_fn, x_train, x_test, c, y, f, grad_f


# ---------------------------------------------------------------- eigenfeatures

FEATURE_SHAPE = (4, 4, 1)  # tiny images, d = 16
N_TRAIN, N_EVAL = 24, 6
EPS = 0.1
FEATURE_SPECS = {
    "fc": {"family": "fc", "depth": 1},
    "conv": {"family": "conv", "depth": 1},
    "twolayer": {"family": "twolayer"},
}


@functools.cache
def feature_problem(family: str, task: str, seed: int = 0):
    """Random images, labels, the kernel, its spectrum and a brute-force Jacobian."""
    rng = np.random.default_rng(seed)
    n_cls = 2 if task == "binary" else 3
    x_train = rng.uniform(size=(N_TRAIN, *FEATURE_SHAPE))
    x_eval = rng.uniform(size=(N_EVAL, *FEATURE_SHAPE))
    lab_train = rng.integers(0, n_cls, N_TRAIN)
    lab_eval = np.arange(N_EVAL) % n_cls
    if task == "binary":
        y_train = (2.0 * lab_train - 1.0)[:, None]
        y_eval = (2.0 * lab_eval - 1.0)[:, None]
    else:
        y_train, y_eval = np.eye(n_cls)[lab_train], np.eye(n_cls)[lab_eval]
    kernel_fn = jax.jit(kernel_fn_from_spec(FEATURE_SPECS[family]))
    gram = np.asarray(kernel_fn(x_train, x_train))
    gram = 0.5 * (gram + gram.T)
    eigvals, eigvecs = np.linalg.eigh(gram)
    eigvals, eigvecs = eigvals[::-1].copy(), eigvecs[:, ::-1].copy()
    # D(x) per evaluation point: (m, n, d), the reference the cache stands in for
    jac = jax.jacfwd(lambda x: kernel_fn(x, x_train))(x_eval)  # (m, n, m, *SHAPE)
    jac = np.asarray(jac).reshape(N_EVAL, N_TRAIN, N_EVAL, -1)
    jac = jac[np.arange(N_EVAL), :, np.arange(N_EVAL)]
    return {
        "task": task,
        "n_cls": n_cls,
        "x_train": x_train,
        "x_eval": x_eval,
        "y_train": y_train,
        "y_eval": y_eval,
        "labels_eval": lab_eval,
        "kernel_fn": kernel_fn,
        "gram": gram,
        "eigvals": eigvals,
        "eigvecs": eigvecs,
        "k_eval_train": np.asarray(kernel_fn(x_eval, x_train)),
        "contract": lambda c: np.einsum("mnd,nj->mdj", jac, c),
        "rows": lambda xf: np.asarray(
            kernel_fn(xf.reshape(-1, *FEATURE_SHAPE), x_train)
        ),
    }


def reference_loss(f, y, task):
    """Cross-entropy written out independently (supp. Eqs. 4 and 7), summed."""
    if task == "binary":
        y_hat = (y[:, 0] + 1) / 2
        p = jax.nn.sigmoid(f[:, 0])
        return -jnp.sum(y_hat * jnp.log(p) + (1 - y_hat) * jnp.log1p(-p))
    return -jnp.sum(jax.nn.log_softmax(f, axis=1) * y)
