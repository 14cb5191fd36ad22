"""Training-free ℓ∞ attacks on the NTK predictor f_t (Tsilivis & Kempe 2022, §3, B).

All attacks act on the kernel machine f_t(x) = Θ(x, X) c_t itself (`ntkadv.predictor`),
inside the box [0, 1]^d and the ball ‖x_adv − x‖∞ <= ε.

* Cross-entropy FGSM (supp. App. B.1). Binary, y ∈ {±1}: sigmoid + BCE with
  ŷ = (y + 1)/2, ∇ₓL = (σ(f) − ŷ) ∇ₓf (Eq. 5), η = ε·sign(∇ₓL) = −ε·y·sign(∇ₓf)
  (Eq. 6). Multiclass, one-hot y: softmax CE (Eq. 7), η = ε·sign(−∇f_y + Σ_r p_r ∇f_r)
  (Eq. 8). ∇ₓf comes from the input-Jacobian cache (Eq. 9), no autodiff.
* PGD-k: k sign-gradient steps of size `step` on the same loss, projected to the
  ε-ball and the box after every step, no random start (the authors' notebook).
  Gradients at perturbed points go through a jax VJP of `kernel_fn`.
* First-order perturbations (supp. App. B.2), from f(x + η) ≈ f(x) + ηᵀ z with
  z_r = ∇ₓ f_r(x) (Eqs. 10, 15, 19). On *test* points they need no labels (Eqs. 17-18):
  the reference class is the model's own prediction.
  - binary: η = −ε·sign(f(x))·sign(z) (Eq. 16 with y_i replaced by the predicted sign);
  - Max-of-ℓ1 (Eq. 20, intended reading): η = ε·sign(z_r − z_{r*}) for the r ≠ r*
    maximising ‖z_r − z_{r*}‖₁, r* = argmax_r f_r(x);
  - Sum-of-Δz (Eq. 22): η = ε·sign(Σ_{r≠r*} (z_r − z_{r*})).
  On correctly classified points these coincide with the label-based versions; on
  misclassified points the label-free attack pushes away from the (wrong) prediction,
  which can make the point correct again — an inherent property of label-free attacks.

Shapes: m evaluation points, n training points, d = flattened input dim, k outputs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

Task = Literal["binary", "multiclass"]
KernelFn = Callable[[jax.Array, jax.Array], jax.Array]

#: Attack names used in tables and file names.
CLOSED_FORM = ("fgsm",)
FIRST_ORDER = {"binary": ("first_order",), "multiclass": ("max_l1", "sum_dz")}


def attack_names(task: Task, pgd: bool = True) -> tuple[str, ...]:
    """The attacks run for a task, in table order."""
    return CLOSED_FORM + (("pgd",) if pgd else ()) + FIRST_ORDER[task]


# ---------------------------------------------------------------- accuracy


def predictions_correct(f, y, task: Task) -> np.ndarray:
    """(m,) bool: sign(f) == y (binary, y ±1) or argmax f == argmax y (multiclass).

    Args:
        f: (m, k) predictions. A binary f = 0 counts as the +1 class.
        y: (m, k) targets.
        task: "binary" (k = 1) or "multiclass".
    """
    f, y = np.asarray(f), np.asarray(y)
    if task == "binary":
        return (f[:, 0] >= 0) == (y[:, 0] > 0)
    return np.argmax(f, axis=1) == np.argmax(y, axis=1)


def accuracy(f, y, task: Task) -> float:
    """Fraction of correct predictions (see `predictions_correct`)."""
    return float(np.mean(predictions_correct(f, y, task)))


# ---------------------------------------------------------------- losses


def loss(f: jax.Array, y: jax.Array, task: Task) -> jax.Array:
    """Per-example cross-entropy of the kernel outputs, (m,).

    Binary: BCE of σ(f) against ŷ = (y + 1)/2 (supp. Eq. 4), written as
    softplus(f) − ŷ f for stability. Multiclass: −f_y + logsumexp f (supp. Eq. 7).
    """
    if task == "binary":
        y_hat = (y[:, 0] + 1.0) / 2.0
        return jax.nn.softplus(f[:, 0]) - y_hat * f[:, 0]
    return -jnp.sum(y * f, axis=1) + jax.nn.logsumexp(f, axis=1)


def loss_output_gradient(f, y, task: Task):
    """∂L/∂f (m, k): σ(f) − ŷ (binary, Eq. 5) or softmax(f) − y (multiclass, Eq. 8)."""
    if task == "binary":
        return jax.nn.sigmoid(f) - (y + 1.0) / 2.0
    return jax.nn.softmax(f, axis=1) - y


def loss_input_gradient(f, grad_f, y, task: Task) -> np.ndarray:
    """∇ₓL (m, d) from outputs and their input gradients (supp. Eqs. 5, 8).

    Args:
        f: (m, k) predictions f_t(x).
        grad_f: (m, d, k) input gradients ∇ₓ f_t(x) (Eq. 9).
        y: (m, k) targets.
        task: "binary" or "multiclass".
    """
    g = np.asarray(loss_output_gradient(jnp.asarray(f), jnp.asarray(y), task))
    return np.einsum("mdk,mk->md", np.asarray(grad_f), g)


# ---------------------------------------------------------------- steps


def perturb(x, direction, eps: float):
    """clip(x + eps·direction, 0, 1) for a direction in {−1, 0, 1}^d."""
    return np.clip(np.asarray(x) + eps * np.asarray(direction), 0.0, 1.0)


def fgsm_step(x, grad, eps: float):
    """One ℓ∞ FGSM step clip(x + eps·sign(grad), 0, 1), shapes (m, d)."""
    return perturb(x, np.sign(grad), eps)


def project(x_adv, x0, eps: float):
    """Project onto {‖x − x0‖∞ <= eps} ∩ [0, 1]^d (either numpy or jax arrays)."""
    xp = jnp if isinstance(x_adv, jax.Array) else np
    return xp.clip(xp.clip(x_adv, x0 - eps, x0 + eps), 0.0, 1.0)


# ---------------------------------------------------------------- directions


def fgsm_direction(f, grad_f, y, task: Task) -> np.ndarray:
    """sign(∇ₓL) (m, d): the FGSM direction, supp. Eq. 6 (binary) / Eq. 8."""
    return np.sign(loss_input_gradient(f, grad_f, y, task))


def reference_class(f, task: Task, y=None) -> np.ndarray:
    """Reference of the first-order attacks: the prediction, or the label if given.

    Returns (m,) ±1 for binary (predicted sign, f = 0 -> +1) and (m,) int class index r*
    for multiclass.
    """
    src = np.asarray(f if y is None else y)
    if task == "binary":
        return np.where(src[:, 0] >= 0, 1.0, -1.0)
    return np.argmax(src, axis=1)


def first_order_direction(f, grad_f, method: str, y=None) -> np.ndarray:
    """Label-free first-order direction (supp. App. B.2), (m, d) in {−1, 0, 1}.

    Args:
        f: (m, k) predictions at the clean points.
        grad_f: (m, d, k) z_r = ∇ₓ f_r at the clean points (Eqs. 15, 19).
        method: "first_order" (binary, Eqs. 16-18), "max_l1" (Eq. 20) or "sum_dz"
            (Eq. 22).
        y: optional (m, k) labels; if None the reference is the prediction (test
            points need no labels, Eq. 18).
    """
    grad_f = np.asarray(grad_f)
    if method == "first_order":
        ref = reference_class(f, "binary", y)
        return -ref[:, None] * np.sign(grad_f[:, :, 0])
    r_star = reference_class(f, "multiclass", y)
    m, _, k = grad_f.shape
    z_star = grad_f[np.arange(m), :, r_star]  # (m, d)
    dz = grad_f - z_star[:, :, None]  # (m, d, k), column r* is 0
    if method == "max_l1":
        l1 = np.abs(dz).sum(axis=1)  # (m, k)
        l1[np.arange(m), r_star] = -np.inf
        r = np.argmax(l1, axis=1)
        return np.sign(dz[np.arange(m), :, r])
    if method == "sum_dz":
        return np.sign(dz.sum(axis=2))
    raise ValueError(f"unknown first-order method {method!r}")


# ---------------------------------------------------------------- autodiff / PGD


def loss_gradient_fn(kernel_fn: KernelFn, task: Task) -> Callable:
    """Pure (x, y, x_train, c) -> ∇ₓ Σ_i L(f_t(x_i), y_i) (shape of x), by VJP.

    The per-example losses are independent, so the gradient of the sum is the stack of
    per-example gradients. Jit the result (the caller's job).
    """

    def total(x, y, x_train, c):
        return jnp.sum(loss(kernel_fn(x, x_train) @ c, y, task))

    return jax.grad(total)


def pgd(
    kernel_fn: KernelFn,
    x,
    x_train,
    c,
    y,
    task: Task,
    eps: float,
    step: float,
    steps: int,
    block_size: int | None = None,
    init_grad=None,
    grad_fn: Callable | None = None,
):
    """PGD-`steps` ℓ∞ attack on f_t with gradients through `kernel_fn` (VJP).

    x_{s+1} = Π_{‖·−x0‖∞<=ε, [0,1]}(x_s + step·sign(∇ₓL(f_t(x_s), y))), x_0 = x, no
    random start (the authors' notebook). Test points are processed in blocks of
    `block_size`.

    Args:
        kernel_fn: analytic NTK, kernel_fn(x1 (a, *shape), x2 (b, *shape)) -> (a, b).
        x: (m, d) flattened or (m, *shape) clean inputs in [0, 1].
        x_train: (n, *shape) training inputs.
        c: (n, k) predictor coefficients (`ntkadv.predictor.coefficients`).
        y: (m, k) targets.
        task: "binary" or "multiclass".
        eps: ℓ∞ budget.
        step: step size.
        steps: number of steps (0 returns x).
        block_size: test points per gradient evaluation (default: all).
        init_grad: optional (m, d) loss gradient at the clean x (e.g. from the Jacobian
            cache), which saves the first VJP.
        grad_fn: optional jitted `loss_gradient_fn(kernel_fn, task)` to reuse.

    Returns:
        x_adv with the shape and dtype of x.
    """
    x_in = np.asarray(x)
    shape = (x_in.shape[0],) + tuple(np.shape(x_train)[1:])
    x0 = jnp.asarray(x_in.reshape(shape))
    x_train = jnp.asarray(x_train)
    c, y = jnp.asarray(c), jnp.asarray(y)
    m = shape[0]
    block = m if not block_size else min(block_size, m)
    grad_fn = grad_fn or jax.jit(loss_gradient_fn(kernel_fn, task))
    x_adv = x0
    for s in range(steps):
        if s == 0 and init_grad is not None:
            g = jnp.asarray(np.asarray(init_grad).reshape(shape))
        else:
            g = jnp.concatenate(
                [
                    grad_fn(x_adv[i : i + block], y[i : i + block], x_train, c)
                    for i in range(0, m, block)
                ]
            )
        x_adv = project(x_adv + step * jnp.sign(g), x0, eps)
    return np.asarray(x_adv, dtype=x_in.dtype).reshape(x_in.shape)


# ---------------------------------------------------------------- the attack suite


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
    settings: Mapping[str, Any],
    family: str,
    m: int,
) -> SuitePlan:
    """Plan from the config's `attacks` section and the architecture family's budget.

    Args:
        taus, times: (T,) from `ntkadv.predictor.time_grid` (last entry inf).
        eps: the dataset's ℓ∞ budget.
        settings: config["attacks"] (eps_multipliers, pgd_steps, pgd_rel_step,
            block_size, budget.{family}: max_times, pgd_times, pgd_steps, eps_curve,
            eps_curve_pgd, n_eval).
        family: architecture family (fc, conv, twolayer).
        m: number of available test points.
    """
    budget = dict(settings["budget"].get(family, {}))
    mults = sorted({float(v) for v in settings["eps_multipliers"]} | {1.0})
    n = len(taus)
    steps = budget.get("pgd_steps") or settings["pgd_steps"]
    return SuitePlan(
        taus=tuple(float(v) for v in taus),
        times=tuple(float(v) for v in times),
        eps_values=tuple(eps * v for v in mults),
        default_eps=mults.index(1.0),
        time_idx=tuple(subsample_indices(n, budget.get("max_times"))),
        pgd_time_idx=tuple(subsample_indices(n, budget.get("pgd_times"))),
        pgd_steps=int(steps),
        pgd_rel_step=float(settings["pgd_rel_step"]),
        eps_curve=bool(budget.get("eps_curve", True)),
        eps_curve_pgd=bool(budget.get("eps_curve_pgd", True)),
        n_eval=min(m, budget.get("n_eval") or m),
        block_size=int(settings["block_size"]),
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
        from ntkadv.kernels import ntk_gram_blocked

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
    from ntkadv.predictor import input_gradient_fn, predictor_fn

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
    predictor_cfg: Mapping[str, Any],
    attacks_cfg: Mapping[str, Any],
    eps: float,
    family: str,
    log=None,
) -> tuple[list[dict], list[dict], dict[str, np.ndarray]]:
    """Rule attack_ntk end to end: f_t on the τ-grid, every attack, gradient checks.

    Args:
        kernel_fn: analytic NTK of the architecture.
        data: prepared dataset (x_train, y_train, x_test, y_test, attrs.task).
        k_test_train: (m, n) Θ(X_test, X_train) from the Gram cache.
        spectrum: (eigvals, eigvecs) of Θ(X_train, X_train) (`ntkadv.spectra`).
        jacobian: `ntkadv.jacobians.InputJacobian` at the test points.
        predictor_cfg: config["predictor"] (lr, tau_log10_min, tau_log10_max, tau_num).
        attacks_cfg: config["attacks"].
        eps: the dataset's ℓ∞ budget.
        family: architecture family (selects the budget).
        log: optional logger.

    Returns:
        (accuracy rows, gradient-check rows, arrays for the HDF5 output).
    """
    from ntkadv.predictor import coefficients_path, time_grid

    task = data["attrs"]["task"]
    lr = float(predictor_cfg["lr"])
    taus, times = time_grid(
        float(spectrum[0][0]),
        lr,
        predictor_cfg["tau_log10_min"],
        predictor_cfg["tau_log10_max"],
        predictor_cfg["tau_num"],
    )
    m_all = data["x_test"].shape[0]
    plan = make_plan(taus, times, eps, attacks_cfg, family, m_all)
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
    n_check = min(int(attacks_cfg["n_gradient_check"]), m)
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
