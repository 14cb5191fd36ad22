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
from ntkadv.attacks.suite import (
    SuitePlan,
    SuiteResults,
    attack_points,
    attack_suite,
    collect_results,
    join_results,
    make_plan,
    with_null_times,
)
from ntkadv.claims import nulls
from ntkadv.losses import class_labels, loss, loss_input_gradient, predictions_correct
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


@dataclasses.dataclass(frozen=True)
class _Machine:
    """What every attacked point range of one kernel shares (`prepare_machine`).

    Attributes:
        plan: the suite's plan (`make_plan`).
        task: "binary" or "multiclass".
        x_train: (n, *shape) float64.
        x_eval, y_eval: (m, *shape), (m, k) the m = plan.n_eval attacked points.
        coefs: (S, T, n, k) c_t of every label set and time.
        f_clean: (S, T, m, k) f_t at the clean points.
        signs: (m, d) random-sign directions.
        contract: (i0, i1, C) -> (i1 - i0, d, K) D(x)ᵀC at points i0:i1.
    """

    plan: Any
    task: Task
    x_train: np.ndarray
    x_eval: np.ndarray
    y_eval: np.ndarray
    coefs: np.ndarray
    f_clean: np.ndarray
    signs: np.ndarray
    contract: Callable[[int, int, np.ndarray], np.ndarray]


def prepare_machine(
    data: Mapping[str, Any],
    k_test_train: np.ndarray,
    spectrum,
    jacobian,
    s: AttackSettings,
    log=None,
) -> _Machine:
    """The plan, f_t on the τ-grid (every label set) and the clean predictions of
    one kernel (the arguments as `attack_kernel_machine`). The permuted-label
    machines are attacked only where the claims read them (`with_null_times`,
    from the true-label machine's clean accuracy and the config seed, as the
    claims rule chooses τ_early)."""
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
    x_eval = np.asarray(data["x_test"][:m], dtype=np.float64)
    ys = label_sets(np.asarray(data["y_train"]), plan.n_perm, s.seed)
    coefs = np.stack([coefficients_path(spectrum, y, times, lr) for y in ys])
    k_eval = np.asarray(k_test_train[:m], np.float64)
    f_clean = np.einsum("mn,stnk->stmk", k_eval, coefs)  # (S, T, m, k)
    y_eval = np.asarray(data["y_test"][:m], dtype=np.float64)
    plan = with_null_times(
        plan,
        predictions_correct(f_clean[0], y_eval, task),
        class_labels(y_eval, task),
        s.seed,
    )
    if log:
        log.info("plan: %s", plan)

    def contract(i0, i1, c):
        return jacobian.eval_subset(i0, i1).contract(c)

    return _Machine(
        plan=plan,
        task=task,
        x_train=np.asarray(data["x_train"], dtype=np.float64),
        x_eval=x_eval,
        y_eval=y_eval,
        coefs=coefs,
        f_clean=f_clean,
        signs=nulls.random_signs(x_eval.reshape(m, -1).shape, s.seed),
        contract=contract,
    )


def machine_checks(kernel_fn: KernelFn, mach: _Machine, s: AttackSettings) -> list:
    """`gradient_check` rows of one kernel (finding 15): the first
    n_gradient_check points at the middle attacked time and at t = ∞."""
    plan = mach.plan
    n_check = min(int(s.n_gradient_check), plan.n_eval)
    need = sorted(set(plan.time_idx) | set(plan.pgd_time_idx))
    checks = []
    for j in sorted({need[len(need) // 2], len(plan.taus) - 1}) if n_check else []:
        c = mach.coefs[0, j]
        res = gradient_check(
            kernel_fn, mach.x_train, mach.x_eval[:n_check], c,
            mach.contract(0, n_check, c), mach.y_eval[:n_check], mach.task,
        )  # fmt: skip
        checks.append({"tau": plan.taus[j], "t": plan.times[j], **res})
    return checks


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
    mach = prepare_machine(data, k_test_train, spectrum, jacobian, s, log)
    rows, arrays, pointwise = attack_suite(
        kernel_fn, mach.x_train, mach.x_eval, mach.y_eval, mach.task, mach.coefs,
        mach.f_clean, mach.contract, mach.plan, signs=mach.signs, log=log,
    )  # fmt: skip
    checks = machine_checks(kernel_fn, mach, s)
    for row in rows:
        row["task"] = mach.task
    return rows, checks, arrays, pointwise


def attack_machine_points(
    kernel_fn: KernelFn, mach: _Machine, i0: int, i1: int, log=None
) -> SuiteResults:
    """`attack_points` of one kernel at its evaluation points i0:i1 (a shard of
    rule attack_ntk; the random signs and clean predictions are those of the whole
    set, so shards joined in order equal the unsharded run)."""
    rows = slice(i0, i1)

    def contract(a, b, c):
        return mach.contract(i0 + a, i0 + b, c)

    return attack_points(
        kernel_fn, mach.x_train, mach.x_eval[rows], mach.y_eval[rows], mach.task,
        mach.coefs, mach.f_clean[:, :, rows], contract, mach.plan,
        signs=mach.signs[rows], log=log,
    )  # fmt: skip


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

    from ntkadv.kernels.analytic import full_spec, kernel_fn_from_spec

    s = settings
    data, k_test_train, spectrum, jacobian = _read_caches(inputs)
    start = time.perf_counter()
    rows, checks, arrays, pointwise = attack_kernel_machine(
        kernel_fn_from_spec(full_spec(s.arch)),
        data,
        k_test_train,
        spectrum,
        jacobian,
        s,
        log=log,
    )
    log.info("attack suite took %.2f s", time.perf_counter() - start)
    _write_outputs(outputs, rows, checks, arrays, pointwise, s, ids, log)


def _read_caches(inputs: dict[str, str]) -> tuple:
    """(prepared data, Θ(X_test, X_train) (m, n), (eigvals, eigvecs), the input
    Jacobian) of one kernel."""
    from ntkadv.data import load_prepared
    from ntkadv.kernels.jacobians import load_input_jacobian

    data = load_prepared(inputs["data"])
    k_test_train = h5io.read(inputs["gram"], ["k_test_train"])["k_test_train"]
    eig = h5io.read(inputs["eigh"], ["eigvals", "eigvecs"])
    jacobian = load_input_jacobian(inputs["jacobian"])
    return data, k_test_train, (eig["eigvals"], eig["eigvecs"]), jacobian


def _write_outputs(
    outputs: dict[str, str],
    rows: list[dict],
    checks: list[dict],
    arrays: dict[str, np.ndarray],
    pointwise: dict[str, np.ndarray],
    s: AttackSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """The four outputs of rule attack_ntk (also written by the merge of its
    shards, merge_attack_shards): accuracy and gradient-check tables,
    adversarial.h5 and pointwise.h5."""
    import pandas as pd

    from ntkadv.attacks.checks import check_suite_rows
    from ntkadv.attacks.pointwise import EXTRA, pointwise_arrays
    from ntkadv.kernels.analytic import full_spec

    check_suite_rows(rows, ", ".join(f"{k} {v}" for k, v in ids.items()))
    table = pd.DataFrame([{**ids, **row} for row in rows])
    table.to_csv(outputs["accuracy"], index=False)
    pd.DataFrame([{**ids, **row} for row in checks]).to_csv(
        outputs["checks"], index=False
    )
    log.info("accuracies (true labels):\n%s", table[table["labels"] == "true"])
    task = rows[0]["task"]
    attrs = h5io.provenance(
        **ids,
        arch_spec=full_spec(s.arch),
        predictor=dataclasses.asdict(s.predictor),
        eps=s.eps,
        task=task,
        robust_accuracy="correct clean AND correct attacked",
    )
    h5io.write(outputs["adversarial"], arrays, attrs)
    labels = class_labels(arrays["y"], task)
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
            **null_attrs(arrays["taus"], pointwise),
        },
    )


#: Why the permuted-label machines' attacked entries are mostly −1 (pointwise.h5).
NOT_RUN = (
    "-1 = not computed. Label sets 1..P (permuted training labels) are attacked "
    "only where a claim reads them (ntkadv.attacks.suite.with_null_times): FGSM, "
    "the random sign and PGD at finding 4's cross-fitted tau_early candidates of "
    "the true-label machine (chosen from its clean accuracy, free) and at t = inf "
    "(null_attacked_taus); their clean predictions are computed at every tau "
    "(finding 6's clean null). Label set 0 is attacked at every planned tau."
)


def null_attrs(taus: np.ndarray, pointwise: dict[str, np.ndarray]) -> dict:
    """pointwise.h5 attrs naming where the permuted-label machines were attacked:
    {attack: [τ]} of label set 1 (every permuted machine shares the plan) and the
    reason for the −1 entries elsewhere (`NOT_RUN`)."""
    if pointwise["clean"].shape[0] < 2:
        return {}
    ran = {
        a: [float(taus[j]) for j in range(len(taus)) if table[1, j, 0] >= 0]
        for a, table in pointwise.items()
        if a != "clean" and table.ndim == 3
    }
    return {"null_attacked_taus": ran, "not_computed": NOT_RUN}


# ------------------------------------------------------- evaluation-point shards
# A paper-scale CONV kernel's attacks request more than a day (docs/paper_scale.md),
# so the workflow splits them into shards of contiguous evaluation-point ranges
# (ntkadv.sizing.shard_count, config resources.max_job_min): attack_ntk_shard runs
# `attack_points` on its range and writes its per-point results; merge_attack_shards
# joins them in point order and reduces them exactly as `attack_suite` does.


@dataclasses.dataclass(frozen=True)
class AttackShardSettings:
    """Params of rule attack_ntk_shard.

    Attributes:
        attack: the kernel's attack settings (those of rule attack_ntk).
        start, stop: the shard's evaluation points start:stop (of plan.n_eval).
    """

    attack: AttackSettings
    start: int
    stop: int


#: Prefixes of a shard file's datasets: per-job correctness, true-label arrays.
_CORRECT, _ARRAY = "correct", "array"


def attack_ntk_shard(
    inputs: dict[str, str],
    outputs: dict[str, str],
    settings: AttackShardSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule attack_ntk_shard: every attack of one kernel at the evaluation points
    start:stop; the shard that holds point 0 also runs the gradient checks.

    Args:
        inputs: paths data, gram, jacobian, eigh (as rule attack_ntk).
        outputs: path part (HDF5): per job ``correct/<q>`` (r,) int8 (the q-th
            job of attrs ``jobs``: attack, label set, time, ε index), the
            true-label arrays ``array/<name>`` (attrs ``arrays``), the clean
            predictions f_clean (S, T, r, k), x_eval (r, *shape) and y_eval (r, k)
            of the r = stop - start points; attrs plan, task, start, stop and the
            gradient-check rows (``checks``, each a list of (column, value) pairs;
            empty but on the first shard).
        settings: the attack settings and the range; ids: {dataset, arch, shard};
        log: the job's logger.
    """
    from ntkadv.kernels.analytic import full_spec, kernel_fn_from_spec

    s, i0, i1 = settings.attack, settings.start, settings.stop
    kernel_fn = kernel_fn_from_spec(full_spec(s.arch))
    data, k_test_train, spectrum, jacobian = _read_caches(inputs)
    mach = prepare_machine(data, k_test_train, spectrum, jacobian, s, log)
    if not 0 <= i0 < i1 <= mach.plan.n_eval:
        raise ValueError(f"shard {i0}:{i1} outside the {mach.plan.n_eval} points")
    log.info("shard %s: evaluation points %d:%d", ids.get("shard"), i0, i1)
    res = attack_machine_points(kernel_fn, mach, i0, i1, log)
    checks = machine_checks(kernel_fn, mach, s) if i0 == 0 else []
    jobs = list(res.correct)
    arrays = {f"{_CORRECT}/{q}": res.correct[key] for q, key in enumerate(jobs)}
    arrays |= {
        f"{_ARRAY}/{name}": np.concatenate(parts) for name, parts in res.arrays.items()
    }
    rows = slice(i0, i1)
    arrays |= {
        "f_clean": mach.f_clean[:, :, rows],
        "x_eval": mach.x_eval[rows],
        "y_eval": mach.y_eval[rows],
    }
    attrs = h5io.provenance(
        **ids,
        plan=dataclasses.asdict(mach.plan),
        task=mach.task,
        start=i0,
        stop=i1,
        jobs=[list(key) for key in jobs],
        arrays=list(res.arrays),
        checks=[list(row.items()) for row in checks],  # (key, value): ordered
    )
    h5io.write(outputs["part"], arrays, attrs)


def read_shard(path: str) -> tuple[SuiteResults, dict[str, Any], dict[str, Any]]:
    """(per-point results, arrays f_clean / x_eval / y_eval, attrs) of one shard
    file of rule attack_ntk_shard."""
    attrs = h5io.read_attrs(path)
    names = [f"{_CORRECT}/{q}" for q in range(len(attrs["jobs"]))]
    names += [f"{_ARRAY}/{name}" for name in attrs["arrays"]]
    arrays = h5io.read(path, [*names, "f_clean", "x_eval", "y_eval"])
    correct = {
        (str(a), int(s), int(j), int(e)): arrays[f"{_CORRECT}/{q}"].astype(bool)
        for q, (a, s, j, e) in enumerate(attrs["jobs"])
    }
    kept = {name: [arrays[f"{_ARRAY}/{name}"]] for name in attrs["arrays"]}
    rest = {k: arrays[k] for k in ("f_clean", "x_eval", "y_eval")}
    return SuiteResults(correct, kept), rest, attrs


def plan_from_attrs(plan: dict[str, Any]) -> SuitePlan:
    """The `SuitePlan` a shard recorded (its ``plan`` attr, lists as tuples)."""
    return SuitePlan(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in plan.items()}
    )


def merge_attack_shards(
    inputs: dict[str, str | list[str]],
    outputs: dict[str, str],
    settings: AttackSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule merge_attack_shards: the shards of one kernel joined in point order,
    reduced to accuracies as `attack_suite` does, written as rule attack_ntk's
    four outputs (the same files and contents as the unsharded job).

    Args:
        inputs: parts, the shard files in point order.
        outputs: as rule attack_ntk.
        settings: the kernel's attack settings (those of rule attack_ntk).
        ids: {dataset, arch}; log: the job's logger.
    """
    shards = [read_shard(path) for path in inputs["parts"]]
    attrs = [a for _, _, a in shards]
    bounds = [(a["start"], a["stop"]) for a in attrs]
    plan = plan_from_attrs(attrs[0]["plan"])
    if (
        bounds[0][0] != 0
        or bounds[-1][1] != plan.n_eval
        or any(a[1] != b[0] for a, b in zip(bounds, bounds[1:], strict=False))
    ):
        raise ValueError(f"shards {bounds} do not tile the {plan.n_eval} points")
    if any(a["plan"] != attrs[0]["plan"] for a in attrs):
        raise ValueError("the shards were run with different attack plans")
    log.info("merging %d shards: %s", len(shards), bounds)
    res = join_results([r for r, _, _ in shards])

    def cat(key: str, axis: int = 0) -> np.ndarray:
        return np.concatenate([rest[key] for _, rest, _ in shards], axis=axis)

    task = attrs[0]["task"]
    rows, arrays, pointwise = collect_results(
        res, plan, cat("f_clean", axis=2), cat("y_eval"), cat("x_eval"), task
    )
    for row in rows:
        row["task"] = task
    checks = [dict(row) for row in attrs[0]["checks"]]
    _write_outputs(outputs, rows, checks, arrays, pointwise, settings, ids, log)
