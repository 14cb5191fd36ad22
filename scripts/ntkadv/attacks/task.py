"""Rule attack_ntk: f_t on the τ-grid, every attack, gradient checks (supp. App. B).

`run` reads the prepared data and the kernel caches, runs `attack_kernel_machine`
and writes the accuracy table, the gradient-check table and the adversarial inputs.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np

from ntkadv import h5io
from ntkadv.attacks.pgd import loss_gradient_fn
from ntkadv.attacks.suite import attack_suite, make_plan
from ntkadv.losses import loss_input_gradient
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
        block_size: points per kernel / gradient block.
        n_gradient_check: points of the autodiff check (finding 15).
        budget: the family's budget.
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


def gradient_check(
    kernel_fn: KernelFn, x_train, x_eval, c, grad_f_cache, y, task: Task
) -> dict[str, float]:
    """Closed-form quantities vs autodiff through `kernel_fn` (finding 15).

    Compares ∇ₓf_t from the Jacobian cache (supp. Eq. 9) with per-output VJPs of the
    kernel predictor, and the closed-form loss gradient / FGSM direction (Eqs. 5-8)
    with `jax.grad` of the cross-entropy through `kernel_fn`.

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
    from ntkadv.spectra.predictor import input_gradient_fn, predictor_fn

    xe, xt, cj = jnp.asarray(x_eval), jnp.asarray(x_train), jnp.asarray(c)
    auto_f = np.asarray(input_gradient_fn(kernel_fn, xt, cj)(xe))
    f = np.asarray(predictor_fn(kernel_fn, xt, cj)(xe))
    auto_l = np.asarray(loss_gradient_fn(kernel_fn, task)(xe, jnp.asarray(y), xt, cj))
    auto_l = auto_l.reshape(auto_l.shape[0], -1)
    closed_l = loss_input_gradient(f, grad_f_cache, y, task)
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
        "n_points": int(xe.shape[0]),
    }


def attack_kernel_machine(
    kernel_fn: KernelFn,
    data: Mapping[str, Any],
    k_test_train: np.ndarray,
    spectrum,
    jacobian,
    s: AttackSettings,
    log=None,
) -> tuple[list[dict], list[dict], dict[str, np.ndarray]]:
    """Rule attack_ntk end to end: f_t on the τ-grid, every attack, gradient checks.

    Args:
        kernel_fn: analytic NTK of the architecture.
        data: prepared dataset (x_train, y_train, x_test, y_test, attrs.task).
        k_test_train: (m, n) Θ(X_test, X_train) from the Gram cache.
        spectrum: (eigvals, eigvecs) of Θ(X_train, X_train) (`ntkadv.spectra.eigh`).
        jacobian: `ntkadv.kernels.jacobians.InputJacobian` at the test points.
        s: the rule's settings (predictor grid, attacks, the family's budget, eps).
        log: optional logger.

    Returns:
        (accuracy rows, gradient-check rows, arrays for the HDF5 output).
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
    coefs = coefficients_path(spectrum, data["y_train"], times, lr)  # (T, n, k)
    f_clean = np.einsum("mn,tnk->tmk", np.asarray(k_test_train[:m], np.float64), coefs)
    need = sorted(set(plan.time_idx) | set(plan.pgd_time_idx))
    k = coefs.shape[2]
    stacked = np.concatenate([coefs[j] for j in need], axis=1)  # one pass over D
    contracted = np.asarray(jacobian.contract(stacked))[:m]  # (m, d, len(need)·k)
    grad_f = {j: contracted[:, :, i * k : (i + 1) * k] for i, j in enumerate(need)}
    if log:
        log.info("plan: %s", plan)
    rows, arrays = attack_suite(
        kernel_fn, x_train, x_eval, y_eval, task, coefs, f_clean, grad_f, plan, log=log
    )
    n_check = min(int(s.n_gradient_check), m)
    checks = []
    for j in sorted({need[len(need) // 2], len(taus) - 1}) if n_check else []:
        res = gradient_check(
            kernel_fn, x_train, x_eval[:n_check], coefs[j],
            grad_f[j][:n_check], y_eval[:n_check], task,
        )  # fmt: skip
        checks.append({"tau": taus[j], "t": times[j], **res})
    for row in rows:
        row["task"] = task
    return rows, checks, arrays


def run(
    inputs: dict[str, str],
    outputs: dict[str, str],
    s: AttackSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule attack_ntk: read data + caches, attack, write the three outputs.

    Args:
        inputs: paths data, gram, jacobian, eigh.
        outputs: paths adversarial (HDF5), accuracy and checks (CSV).
        s: settings; ids: {dataset, arch}; log: the job's logger.
    """
    import time

    import pandas as pd

    from ntkadv.data import load_prepared
    from ntkadv.kernels.analytic import full_spec, kernel_fn_from_spec
    from ntkadv.kernels.jacobians import load_input_jacobian

    data = load_prepared(inputs["data"])
    k_test_train = h5io.read(inputs["gram"], ["k_test_train"])["k_test_train"]
    eig = h5io.read(inputs["eigh"], ["eigvals", "eigvecs"])
    spec = full_spec(s.arch)
    start = time.perf_counter()
    rows, checks, arrays = attack_kernel_machine(
        kernel_fn_from_spec(spec),
        data,
        k_test_train,
        (eig["eigvals"], eig["eigvecs"]),
        load_input_jacobian(inputs["jacobian"]),
        s,
        log=log,
    )
    log.info("attack suite took %.2f s", time.perf_counter() - start)
    table = pd.DataFrame([{**ids, **row} for row in rows])
    table.to_csv(outputs["accuracy"], index=False)
    pd.DataFrame([{**ids, **row} for row in checks]).to_csv(
        outputs["checks"], index=False
    )
    log.info("accuracies:\n%s", table.to_string())
    attrs = h5io.provenance(
        **ids,
        arch_spec=spec,
        predictor=dataclasses.asdict(s.predictor),
        eps=s.eps,
        task=data["attrs"]["task"],
    )
    h5io.write(outputs["adversarial"], arrays, attrs)
