"""The attack suite of one kernel machine: every attack at every planned (t, ε).

All attacks act on the kernel machine f_t(x) = Θ(x, X) c_t itself
(`ntkadv.spectra.predictor`), inside the box [0, 1]^d and the ball ‖x_adv − x‖∞ <= ε:
closed-form FGSM and first-order directions (`ntkadv.attacks.closed_form`) and PGD
(`ntkadv.attacks.pgd`). `make_plan` chooses the times, budgets and points from the
config and the architecture family's compute budget.

Shapes: m evaluation points, n training points, d = flattened input dim, k outputs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

from ntkadv.attacks.closed_form import (
    FIRST_ORDER,
    fgsm_direction,
    first_order_direction,
    perturb,
)
from ntkadv.attacks.pgd import loss_gradient_fn, pgd
from ntkadv.losses import accuracy, loss_input_gradient
from ntkadv.typing import KernelFn, Task


def subsample_indices(n: int, k: int | None) -> list[int]:
    """`k` evenly spaced indices of range(n) that always include the last one (t = ∞).

    None or k >= n keeps all; k = 1 keeps only the last; k >= 2 also keeps the first.
    """
    if k is None or k >= n:
        return list(range(n))
    if k <= 0:
        return []
    if k == 1:
        return [n - 1]
    return sorted({int(i) for i in np.round(np.linspace(0, n - 1, k))})


@dataclasses.dataclass(frozen=True)
class SuitePlan:
    """What `attack_suite` computes for one kernel (chosen to fit the compute budget).

    Attributes:
        taus: (T,) normalised times τ = lr·λ_max·t, the last one inf.
        times: (T,) training times t.
        eps_values: ℓ∞ budgets of the ε-curve; `eps_values[default_eps]` is the
            dataset's ε.
        default_eps: index of the dataset's ε in `eps_values`.
        time_idx: times at which FGSM and the first-order attacks are run.
        pgd_time_idx: times at which PGD is run.
        pgd_steps: PGD iterations.
        pgd_rel_step: PGD step size relative to ε.
        eps_curve: run the closed-form attacks at every ε at t = ∞.
        eps_curve_pgd: also run PGD at every ε at t = ∞.
        n_eval: evaluation points attacked (the first n_eval test points).
        block_size: points per kernel / gradient block.
    """

    taus: tuple[float, ...]
    times: tuple[float, ...]
    eps_values: tuple[float, ...]
    default_eps: int
    time_idx: tuple[int, ...]
    pgd_time_idx: tuple[int, ...]
    pgd_steps: int
    pgd_rel_step: float
    eps_curve: bool
    eps_curve_pgd: bool
    n_eval: int
    block_size: int


def make_plan(
    taus: np.ndarray,
    times: np.ndarray,
    eps: float,
    settings: Any,
    m: int,
) -> SuitePlan:
    """Plan from the attack settings and the architecture family's budget.

    Args:
        taus, times: (T,) from `ntkadv.spectra.predictor.time_grid` (last entry inf).
        eps: the dataset's ℓ∞ budget.
        settings: `ntkadv.attacks.task.AttackSettings` (eps_multipliers, pgd_steps,
            pgd_rel_step, block_size and the family's budget: max_times, pgd_times,
            pgd_steps, eps_curve, eps_curve_pgd, n_eval).
        m: number of available test points.
    """
    budget = settings.budget
    mults = sorted({float(v) for v in settings.eps_multipliers} | {1.0})
    n = len(taus)
    steps = budget.pgd_steps or settings.pgd_steps
    return SuitePlan(
        taus=tuple(float(v) for v in taus),
        times=tuple(float(v) for v in times),
        eps_values=tuple(eps * v for v in mults),
        default_eps=mults.index(1.0),
        time_idx=tuple(subsample_indices(n, budget.max_times)),
        pgd_time_idx=tuple(subsample_indices(n, budget.pgd_times)),
        pgd_steps=int(steps),
        pgd_rel_step=float(settings.pgd_rel_step),
        eps_curve=bool(budget.eps_curve),
        eps_curve_pgd=bool(budget.eps_curve_pgd),
        n_eval=min(m, budget.n_eval or m),
        block_size=int(settings.block_size),
    )


def attack_suite(
    kernel_fn: KernelFn,
    x_train,
    x_eval,
    y_eval,
    task: Task,
    coefs,
    f_clean,
    grad_f: Mapping[int, np.ndarray],
    plan: SuitePlan,
    kernel_matrix_fn: Callable | None = None,
    log=None,
) -> tuple[list[dict], dict[str, np.ndarray]]:
    """All attacks of one kernel machine at every planned (t, ε); robust accuracies.

    Closed-form attacks (FGSM, first-order) use the cached gradients at the clean
    points; their sign direction does not depend on ε, so the ε-curve costs only one
    kernel evaluation per ε. PGD recomputes gradients by VJP through `kernel_fn`. All
    adversarial inputs are then evaluated with one blocked kernel evaluation.

    Args:
        kernel_fn: analytic NTK.
        x_train: (n, *shape) training inputs.
        x_eval: (m, *shape) clean evaluation points (m = plan.n_eval).
        y_eval: (m, k) their targets.
        task: "binary" or "multiclass".
        coefs: (T, n, k) c_t for every planned time.
        f_clean: (T, m, k) f_t at the clean points.
        grad_f: {time index: (m, d, k) ∇ₓf_t} for every index in plan.time_idx and
            plan.pgd_time_idx (supp. Eq. 9, from the Jacobian cache).
        plan: `make_plan` output.
        kernel_matrix_fn: x (M, *shape) -> Θ(x, X) (M, n); default a blocked
            evaluation of `kernel_fn` (`ntkadv.kernels.ntk_gram_blocked`).
        log: optional logger.

    Returns:
        rows: one dict per (attack, t, ε) with keys attack, tau, t, eps, eps_mult,
            accuracy, n_eval ("clean" rows at ε = 0 for every t);
        arrays: x_clean, y, taus, times, eps_values, and per job
            ``x_adv/{attack}/t{j}_e{e}`` (float32, input shape) and
            ``f/{attack}/t{j}_e{e}`` (m, k) predictions (``f/clean/t{j}``).
    """
    if kernel_matrix_fn is None:
        from ntkadv.kernels.blocked import ntk_gram_blocked

        def kernel_matrix_fn(x):
            return ntk_gram_blocked(kernel_fn, x, x_train, plan.block_size)

    x_eval, y_eval = np.asarray(x_eval), np.asarray(y_eval)
    shape, m = x_eval.shape[1:], x_eval.shape[0]
    x = x_eval.reshape(m, -1)
    inf_idx = len(plan.taus) - 1
    e_default = plan.default_eps
    e_all = list(range(len(plan.eps_values)))

    def e_list(j: int, curve: bool) -> list[int]:
        return e_all if (j == inf_idx and curve) else [e_default]

    jobs: dict[tuple[str, int, int], np.ndarray] = {}
    for j in plan.time_idx:
        dirs = {"fgsm": fgsm_direction(f_clean[j], grad_f[j], y_eval, task)}
        for method in FIRST_ORDER[task]:
            dirs[method] = first_order_direction(f_clean[j], grad_f[j], method)
        for name, direction in dirs.items():
            for e in e_list(j, plan.eps_curve):
                jobs[(name, j, e)] = perturb(x, direction, plan.eps_values[e])
    grad_fn = jax.jit(loss_gradient_fn(kernel_fn, task))
    for j in plan.pgd_time_idx:
        g0 = loss_input_gradient(f_clean[j], grad_f[j], y_eval, task)
        for e in e_list(j, plan.eps_curve and plan.eps_curve_pgd):
            eps = plan.eps_values[e]
            jobs[("pgd", j, e)] = pgd(
                kernel_fn, x, x_train, coefs[j], y_eval, task, eps,
                plan.pgd_rel_step * eps, plan.pgd_steps, plan.block_size,
                init_grad=g0, grad_fn=grad_fn,
            )  # fmt: skip
        if log:
            log.info("PGD-%d at tau=%g done", plan.pgd_steps, plan.taus[j])
    keys = list(jobs)
    k_adv = np.asarray(
        kernel_matrix_fn(
            np.concatenate([jobs[key] for key in keys]).reshape(-1, *shape)
        )
    )
    rows: list[dict] = []
    arrays: dict[str, np.ndarray] = {
        "x_clean": x_eval.astype(np.float32),
        "y": y_eval,
        "taus": np.asarray(plan.taus),
        "times": np.asarray(plan.times),
        "eps_values": np.asarray(plan.eps_values),
    }
    eps0 = plan.eps_values[e_default]
    for j, (tau, t) in enumerate(zip(plan.taus, plan.times, strict=True)):
        rows.append(
            _row("clean", tau, t, 0.0, 0.0, accuracy(f_clean[j], y_eval, task), m)
        )
        arrays[f"f/clean/t{j}"] = np.asarray(f_clean[j])
    for i, (name, j, e) in enumerate(keys):
        f_adv = k_adv[i * m : (i + 1) * m] @ np.asarray(coefs[j])
        eps = plan.eps_values[e]
        acc = accuracy(f_adv, y_eval, task)
        rows.append(_row(name, plan.taus[j], plan.times[j], eps, eps / eps0, acc, m))
        arrays[f"x_adv/{name}/t{j}_e{e}"] = (
            jobs[(name, j, e)].reshape(m, *shape).astype(np.float32)
        )
        arrays[f"f/{name}/t{j}_e{e}"] = f_adv
    return rows, arrays


def _row(attack, tau, t, eps, eps_mult, acc, n_eval) -> dict:
    return {
        "attack": attack,
        "tau": tau,
        "t": t,
        "eps": eps,
        "eps_mult": eps_mult,
        "accuracy": acc,
        "n_eval": n_eval,
    }
