"""Rule attack_ntk: f_t on the τ-grid, every attack, nulls, gradient checks (App. B).

`attack_ntk` (the rule's task, with the entry signature of scripts/_common.call)
reads the prepared data and the kernel caches, runs `attack_kernel_machine` and
writes the accuracy table, the gradient-check table, the adversarial inputs and the
per-point correctness (pointwise.h5, what the claims rule bootstraps over).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ntkadv import h5io
from ntkadv.attacks.suite import attack_suite, make_plan
from ntkadv.claims import nulls
from ntkadv.losses import loss, loss_input_gradient
from ntkadv.typing import KernelFn, Task


@dataclasses.dataclass(frozen=True)
class PredictorSettings:
    """The τ-grid of f_t: τ = lr·λ_max·t log-spaced in [10^min, 10^max], plus ∞."""

    lr: float
    tau_log10_min: float
    tau_log10_max: float
    tau_num: int


@dataclasses.dataclass(frozen=True)
class AttackBudget:
    """What is affordable for one architecture family (config attacks.budget)."""

    max_times: int | None = None
    pgd_times: int | None = None
    pgd_steps: int | None = None
    eps_curve: bool = True
    eps_curve_pgd: bool = True
    n_eval: int | None = None
    block_size: int | None = None


@dataclasses.dataclass(frozen=True)
class AttackSettings:
    """Params of rule attack_ntk (exactly what the job consumes).

    Attributes:
        arch: the architecture's config entry.
        eps: the dataset's ℓ∞ budget.
        x64: float64 kernels.
        predictor: the τ-grid.
        eps_multipliers: ε-curve at t = ∞ (× eps).
        pgd_steps, pgd_rel_step: PGD iterations and step / ε.
        block_size: rows per kernel-row / PGD call (the family's budget may
            override it).
        n_gradient_check: points of the autodiff check (finding 15).
        budget: the family's budget.
        null_permutations: permuted-label machines attacked as the null control.
        seed: config seed (label permutations, random signs).
        extra_eps: further ℓ∞ budgets (datasets.<d>.extra_eps) at which FGSM and
            PGD also run at every attacked time and label set (finding 4 off the
            paper-ε floor; `suite.SuitePlan.extra_eps`); empty: the paper's ε only.
    """

    arch: dict[str, Any]
    eps: float
    x64: bool
    predictor: PredictorSettings
    eps_multipliers: tuple[float, ...]
    pgd_steps: int
    pgd_rel_step: float
    block_size: int
    n_gradient_check: int
    budget: AttackBudget
    null_permutations: int = 0
    seed: int = 0
    extra_eps: tuple[float, ...] = ()


@functools.lru_cache(maxsize=8)
def _check_fns(kernel_fn: KernelFn, task: Task) -> tuple[Callable, Callable]:
    """Jitted (f, VJP with a cotangent) and ∇ₓ Σ L through `kernel_fn`; x_train and c
    are arguments (no constant folding of the training set)."""

    def f_vjp(xe, xt, c, cot):
        out, vjp = jax.vjp(lambda x: kernel_fn(x, xt) @ c, xe)
        return out, vjp(cot)[0]

    def loss_grad(xe, xt, c, y):
        return jax.grad(lambda x: jnp.sum(loss(kernel_fn(x, xt) @ c, y, task)))(xe)

    return jax.jit(f_vjp), jax.jit(loss_grad)


def gradient_check(
    kernel_fn: KernelFn, x_train, x_eval, c, grad_f_cache, y, task: Task
) -> dict[str, float]:
    """Closed-form quantities vs autodiff through `kernel_fn` (finding 15).

    Compares ∇ₓf_t from the Jacobian cache (supp. Eq. 9) with per-output VJPs of the
    kernel predictor, and the closed-form loss gradient / FGSM direction (Eqs. 5-8)
    with `jax.grad` of the cross-entropy through `kernel_fn` (both jitted).

    Args:
        kernel_fn: analytic NTK.
        x_train: (n, *shape).
        x_eval: (p, *shape) a few evaluation points.
        c: (n, k) coefficients.
        grad_f_cache: (p, d, k) cached ∇ₓf_t at x_eval.
        y: (p, k) targets.
        task: "binary" or "multiclass".

    Returns:
        grad_f_rel_err (max abs error / max abs value), loss_grad_rel_err, and
        sign_agreement (FGSM sign agreement on components with |∂L| > 1e-6 max).
    """
    f_vjp, loss_grad = _check_fns(kernel_fn, task)
    xe, xt, cj, yj = (jnp.asarray(a) for a in (x_eval, x_train, c, y))
    p, k = xe.shape[0], cj.shape[1]
    cols = []
    for r in range(k):
        f, g = f_vjp(xe, xt, cj, jnp.zeros((p, k), xe.dtype).at[:, r].set(1.0))
        cols.append(np.asarray(g).reshape(p, -1))
    auto_f = np.stack(cols, axis=-1)
    auto_l = np.asarray(loss_grad(xe, xt, cj, yj)).reshape(p, -1)
    closed_l = loss_input_gradient(np.asarray(f), grad_f_cache, y, task)
    big = np.abs(auto_l) > 1e-6 * np.abs(auto_l).max()
    return {
        "grad_f_rel_err": float(
            np.abs(grad_f_cache - auto_f).max() / np.abs(auto_f).max()
        ),
        "loss_grad_rel_err": float(
            np.abs(closed_l - auto_l).max() / np.abs(auto_l).max()
        ),
        "sign_agreement": float(
            np.mean(np.sign(closed_l[big]) == np.sign(auto_l[big]))
        ),
        "n_points": int(p),
    }


def label_sets(y_train: np.ndarray, n_perm: int, seed: int) -> np.ndarray:
    """(1 + P, n, k): the true training targets, then P permutations of them."""
    perms = nulls.label_permutations(y_train.shape[0], n_perm, seed)
    return np.stack([y_train] + [y_train[p] for p in perms])


def attack_kernel_machine(
    kernel_fn: KernelFn,
    data: Mapping[str, Any],
    k_test_train: np.ndarray,
    spectrum,
    jacobian,
    s: AttackSettings,
    log=None,
) -> tuple[list[dict], list[dict], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Rule attack_ntk end to end: f_t on the τ-grid, every attack, nulls, checks.

    Args:
        kernel_fn: analytic NTK of the architecture.
        data: prepared dataset (x_train, y_train, x_test, y_test, attrs.task).
        k_test_train: (m, n) Θ(X_test, X_train) from the Gram cache.
        spectrum: (eigvals, eigvecs) of Θ(X_train, X_train) (`ntkadv.spectra.eigh`).
        jacobian: `ntkadv.kernels.jacobians.InputJacobian` at the test points
            (anything with ``eval_subset(i0, i1).contract(c)``).
        s: the rule's settings (predictor grid, attacks, the family's budget, eps).
        log: optional logger.

    Returns:
        (accuracy rows, gradient-check rows, arrays for adversarial.h5, per-point
        correctness for pointwise.h5 (`ntkadv.attacks.suite.attack_suite`)).
    """
    from ntkadv.spectra.predictor import coefficients_path, time_grid

    task = data["attrs"]["task"]
    p = s.predictor
    lr = float(p.lr)
    taus, times = time_grid(
        float(spectrum[0][0]), lr, p.tau_log10_min, p.tau_log10_max, p.tau_num
    )
    m_all = data["x_test"].shape[0]
    plan = make_plan(taus, times, float(s.eps), s, m_all)
    m = plan.n_eval
    x_train = np.asarray(data["x_train"], dtype=np.float64)
    x_eval = np.asarray(data["x_test"][:m], dtype=np.float64)
    y_eval = np.asarray(data["y_test"][:m], dtype=np.float64)
    ys = label_sets(np.asarray(data["y_train"]), plan.n_perm, s.seed)
    coefs = np.stack([coefficients_path(spectrum, y, times, lr) for y in ys])
    k_eval = np.asarray(k_test_train[:m], np.float64)
    f_clean = np.einsum("mn,stnk->stmk", k_eval, coefs)  # (S, T, m, k)
    signs = nulls.random_signs(x_eval.reshape(m, -1).shape, s.seed)
    if log:
        log.info("plan: %s", plan)

    def contract(i0, i1, c):
        return jacobian.eval_subset(i0, i1).contract(c)

    rows, arrays, pointwise = attack_suite(
        kernel_fn, x_train, x_eval, y_eval, task, coefs, f_clean, contract, plan,
        signs=signs, log=log,
    )  # fmt: skip
    n_check = min(int(s.n_gradient_check), m)
    need = sorted(set(plan.time_idx) | set(plan.pgd_time_idx))
    checks = []
    for j in sorted({need[len(need) // 2], len(taus) - 1}) if n_check else []:
        res = gradient_check(
            kernel_fn, x_train, x_eval[:n_check], coefs[0, j],
            contract(0, n_check, coefs[0, j]), y_eval[:n_check], task,
        )  # fmt: skip
        checks.append({"tau": taus[j], "t": times[j], **res})
    for row in rows:
        row["task"] = task
    return rows, checks, arrays, pointwise


def attack_ntk(
    inputs: dict[str, str],
    outputs: dict[str, str],
    settings: AttackSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule attack_ntk: read data + caches, attack, write the four outputs.

    Args:
        inputs: paths data, gram, jacobian, eigh.
        outputs: paths adversarial, pointwise (HDF5), accuracy and checks (CSV).
        settings: the rule's settings; ids: {dataset, arch}; log: the job's logger.
    """
    import time

    import pandas as pd

    from ntkadv.attacks.checks import check_suite_rows
    from ntkadv.attacks.pointwise import EXTRA, pointwise_arrays
    from ntkadv.data import load_prepared
    from ntkadv.kernels.analytic import full_spec, kernel_fn_from_spec
    from ntkadv.kernels.jacobians import load_input_jacobian

    s = settings
    data = load_prepared(inputs["data"])
    k_test_train = h5io.read(inputs["gram"], ["k_test_train"])["k_test_train"]
    eig = h5io.read(inputs["eigh"], ["eigvals", "eigvecs"])
    spec = full_spec(s.arch)
    start = time.perf_counter()
    rows, checks, arrays, pointwise = attack_kernel_machine(
        kernel_fn_from_spec(spec),
        data,
        k_test_train,
        (eig["eigvals"], eig["eigvecs"]),
        load_input_jacobian(inputs["jacobian"]),
        s,
        log=log,
    )
    log.info("attack suite took %.2f s", time.perf_counter() - start)
    check_suite_rows(rows, ", ".join(f"{k} {v}" for k, v in ids.items()))
    table = pd.DataFrame([{**ids, **row} for row in rows])
    table.to_csv(outputs["accuracy"], index=False)
    pd.DataFrame([{**ids, **row} for row in checks]).to_csv(
        outputs["checks"], index=False
    )
    log.info("accuracies (true labels):\n%s", table[table["labels"] == "true"])
    task = data["attrs"]["task"]
    attrs = h5io.provenance(
        **ids,
        arch_spec=spec,
        predictor=dataclasses.asdict(s.predictor),
        eps=s.eps,
        task=task,
        robust_accuracy="correct clean AND correct attacked",
    )
    h5io.write(outputs["adversarial"], arrays, attrs)
    y = arrays["y"]
    labels = (
        (y[:, 0] > 0).astype(np.int64) if task == "binary" else np.argmax(y, axis=1)
    )
    extra = {"extra_eps": list(s.extra_eps)} if s.extra_eps else {}
    h5io.write(
        outputs["pointwise"],
        pointwise_arrays(arrays["taus"], labels, pointwise),
        {
            **attrs,
            **extra,
            "attacks": [a for a in pointwise if a != "clean" and a not in EXTRA]
            + ["clean"],
            "n_permutations": int(s.null_permutations),
            "seed": int(s.seed),
            "label_sets": "set 0: true training labels; 1..P: "
            "ntkadv.claims.nulls.label_permutations(n_train, P, seed)",
        },
    )
