"""The attack suite of one kernel: every attack at every planned (t, ε), with nulls.

All attacks act on the kernel machine f_t(x) = Θ(x, X) c_t itself
(`ntkadv.spectra.predictor`), inside the box [0, 1]^d and the ball ‖x_adv − x‖∞ <= ε:
closed-form FGSM and first-order directions (`ntkadv.attacks.closed_form`) and PGD
(`ntkadv.attacks.pgd.pgd_rows_fn`). `make_plan` chooses the times, budgets and points
from the config and the architecture family's compute budget.

Same-run null controls (`ntkadv.claims.nulls`): the machines c_t(Y_π) of P permuted
training labels on the same spectrum are attacked at the dataset's ε (and the extra
ε) with FGSM and PGD, and a random-sign perturbation x + ε·r (one r per point, shared
by every machine) is evaluated for every machine. Their clean predictions come at
every time for free; their attacks run only where a claim reads them
(`SuitePlan.null_times`, `with_null_times`: finding 4's cross-fitted τ_early
candidates of the true-label machine, chosen from its clean accuracy, and t = ∞;
PGD not at all when it runs at t = ∞ only, `SuitePlan.pgd_times`), so P costs
about P·(2-3 times) attacks instead of P·T. Elsewhere their entries are "not run"
(−1 in the per-point tables, no accuracy row).

The true-label machine's results do not depend on the null plan (P, its times),
bit for bit: its kernel rows, PGD blocks and tile size are computed apart from the
permuted machines' (XLA's kernel rows can differ in the last bit with the block
shape), and the one Jacobian contraction per tile has the true-label columns first
(a GEMM column is the same whatever the other columns).

Robust accuracy counts a point only if it is correct clean AND correct attacked, so
a label-free attack that pushes a misclassified point to the right class does not
count as robust; the plain accuracy under attack is kept for diagnosis.

Cost: the evaluation points are processed in tiles; per tile one Jacobian
contraction gives ∇ₓf for every (machine, time) at once (supp. Eq. 9), the
closed-form points are evaluated with two blocked kernel-row passes (true labels
with the random signs, permuted labels), and PGD runs on blocks of (point,
machine, ε) rows with its final prediction fused in.

Shapes: m evaluation points, n training points, d = flattened input dim, k outputs,
S = 1 + P label sets (set 0: the true labels), T times.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ntkadv.attacks.closed_form import (
    FIRST_ORDER,
    fgsm_direction,
    first_order_direction,
    perturb,
)
from ntkadv.attacks.pgd import pgd_rows_fn
from ntkadv.attacks.pointwise import ROBUST_ATTACKS, Pointwise, early_times
from ntkadv.kernels.blocked import block_starts
from ntkadv.losses import loss_input_gradient, predictions_correct
from ntkadv.timing import Progress
from ntkadv.typing import KernelFn, Task

#: Floats per evaluation tile (gradients and perturbed points): 2^25 = 256 MB.
TILE_FLOATS = 2**25


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
        eps_values: ℓ∞ budgets of the ε-curve (the first `n_curve`), then any
            extra ε not on it; `eps_values[default_eps]` is the dataset's ε.
        default_eps: index of the dataset's ε in `eps_values`.
        time_idx: times at which FGSM, the first-order attacks and the random-sign
            control are run.
        pgd_time_idx: times at which PGD is run.
        pgd_steps: PGD iterations.
        pgd_rel_step: PGD step size relative to ε.
        eps_curve: run the closed-form attacks at every ε at t = ∞ (true labels).
        eps_curve_pgd: also run PGD at every ε at t = ∞.
        n_eval: evaluation points attacked (the first n_eval test points).
        block_size: rows per kernel-row / PGD call (one compiled shape).
        n_perm: permuted-label machines attacked as the null control.
        extra_eps: indices in `eps_values` of the extra ε (datasets.<d>.extra_eps)
            at which FGSM and PGD run like at the dataset's ε: every attacked time
            and label set (finding 4 off the paper-ε floor); PGD only if it runs at
            a finite time (finding 4 needs one).
        n_curve: the ε-curve is eps_values[:n_curve] (None: all of them).
        null_times: times of `time_idx` at which the permuted-label machines
            are attacked by FGSM and the random sign (None: all of them).
        null_pgd_times: times of `pgd_time_idx` at which they are attacked by PGD
            (None: all of them). Both set by `with_null_times`.
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
    n_perm: int = 0
    extra_eps: tuple[int, ...] = ()
    n_curve: int | None = None
    null_times: tuple[int, ...] | None = None
    null_pgd_times: tuple[int, ...] | None = None

    def closed_times(self, s: int) -> tuple[int, ...]:
        """FGSM and random-sign times of label set s: `time_idx`, for the
        permuted-label machines only those in `null_times`."""
        if s == 0 or self.null_times is None:
            return self.time_idx
        return tuple(j for j in self.time_idx if j in self.null_times)

    def pgd_times(self, s: int) -> tuple[int, ...]:
        """PGD times of label set s: the plan's, except that the permuted-label
        machines skip PGD when it runs at t = ∞ only (their PGD enters finding 4
        only, which needs a finite PGD time as well) and run it only at
        `null_pgd_times`."""
        finite = any(j < len(self.taus) - 1 for j in self.pgd_time_idx)
        if s == 0:
            return self.pgd_time_idx
        if not finite:
            return ()
        if self.null_pgd_times is None:
            return self.pgd_time_idx
        return tuple(j for j in self.pgd_time_idx if j in self.null_pgd_times)

    def times_of(self, s: int) -> tuple[int, ...]:
        """Every time at which label set s is attacked (closed form or PGD)."""
        return tuple(sorted(set(self.closed_times(s)) | set(self.pgd_times(s))))

    def eps_list(self, s: int, j: int, pgd: bool = False) -> list[int]:
        """ε indices of label set s at time j (the curve: true labels at t = ∞)."""
        curve = self.eps_curve and (self.eps_curve_pgd or not pgd)
        if s == 0 and j == len(self.taus) - 1 and curve:
            return list(range(self.n_curve or len(self.eps_values)))
        return [self.default_eps]

    def attack_eps(self, s: int, j: int, pgd: bool = False) -> list[int]:
        """ε indices of FGSM (PGD if `pgd`) for label set s at time j: `eps_list`
        and the extra ε (PGD: only when PGD runs at a finite time, else finding 4
        leaves PGD out and the extra ε would buy nothing)."""
        base = self.eps_list(s, j, pgd)
        finite = any(t < len(self.taus) - 1 for t in self.pgd_time_idx)
        if not self.extra_eps or (pgd and not finite):
            return base
        return sorted(set(base) | set(self.extra_eps))


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
            pgd_rel_step, block_size, null_permutations and the family's budget:
            max_times, pgd_times, pgd_steps, eps_curve, eps_curve_pgd, n_eval,
            block_size).
        m: number of available test points.
    """
    budget = settings.budget
    mults = sorted({float(v) for v in settings.eps_multipliers} | {1.0})
    n = len(taus)
    steps = budget.pgd_steps or settings.pgd_steps
    values, extra = extra_eps_values(
        [eps * v for v in mults], getattr(settings, "extra_eps", ())
    )
    return SuitePlan(
        taus=tuple(float(v) for v in taus),
        times=tuple(float(v) for v in times),
        eps_values=values,
        default_eps=mults.index(1.0),
        time_idx=tuple(subsample_indices(n, budget.max_times)),
        pgd_time_idx=tuple(subsample_indices(n, budget.pgd_times)),
        pgd_steps=int(steps),
        pgd_rel_step=float(settings.pgd_rel_step),
        eps_curve=bool(budget.eps_curve),
        eps_curve_pgd=bool(budget.eps_curve_pgd),
        n_eval=min(m, budget.n_eval or m),
        block_size=int(budget.block_size or settings.block_size),
        n_perm=int(getattr(settings, "null_permutations", 0)),
        extra_eps=extra,
        n_curve=len(mults) if extra else None,
    )


def extra_eps_values(
    curve: list[float], extra: tuple[float, ...] | list[float]
) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """The plan's ε values and the indices of the extra ε among them.

    An extra ε equal to a curve value (np.isclose, e.g. 0.075 = 0.25 × 0.3) reuses
    that index, so the t = ∞ true-label attack is not run twice; any other is
    appended after the curve.

    Args:
        curve: (C,) ε values of the curve (the dataset's ε among them).
        extra: (E,) extra ε (datasets.<d>.extra_eps).

    Returns:
        (eps_values (C + appended,), extra indices (E,)).
    """
    values = [float(v) for v in curve]
    idx = []
    for v in extra:
        hit = [i for i, c in enumerate(values) if np.isclose(c, float(v))]
        if not hit:
            values.append(float(v))
            hit = [len(values) - 1]
        idx.append(hit[0])
    return tuple(values), tuple(idx)


def with_null_times(
    plan: SuitePlan, clean_true: np.ndarray, labels: np.ndarray, seed: int
) -> SuitePlan:
    """The plan with the permuted-label machines attacked only where a claim reads
    them: for FGSM and for PGD, the cross-fitted τ_early of finding 4 and t = ∞.

    τ_early is chosen exactly as the claims rule chooses it
    (`ntkadv.attacks.pointwise.early_times`, the same code, seed and labels): the
    earliest attacked finite τ at which the true-label f_t is useful, on each half of
    the evaluation points (so at most two τ per attack). It depends only on the
    true-label machine's clean accuracy, which needs no attack. Finding 4 reads the
    permuted machines' robust accuracy at those τ and at t = ∞ (the extra-ε rows
    too: same clean accuracy, same τ); finding 6 reads only their clean accuracy;
    the robustness-vs-time figure draws their FGSM where it ran. When the
    true-label machine has no useful early τ (finding 4 leaves the kernel out), the
    permuted machines are attacked at t = ∞ only.

    Args:
        plan: `make_plan` output.
        clean_true: (T, m) bool clean correctness of the true-label f_t.
        labels: (m,) class index of the evaluation points
            (`ntkadv.losses.class_labels`).
        seed: the claims rule's seed (config seed: its bootstrap of `useful_times`).

    Returns:
        `plan` with `null_times` (FGSM, random sign) and `null_pgd_times` set.
    """
    n_times, m = len(plan.taus), int(np.asarray(labels).shape[0])

    def ran(times: tuple[int, ...]) -> np.ndarray:
        table = np.full((1, n_times, m), -1, np.int8)
        table[0, list(times)] = 1
        return table

    pw = Pointwise(
        dataset="",
        arch="",
        taus=np.asarray(plan.taus),
        labels=np.asarray(labels),
        correct={
            "clean": np.asarray(clean_true, bool)[None].astype(np.int8),
            "fgsm": ran(plan.time_idx),
            "pgd": ran(plan.pgd_time_idx),
        },
    )
    chosen = {}
    for attack in ROBUST_ATTACKS:
        j_of, _ = early_times(pw, attack, seed)
        chosen[attack] = tuple(sorted({int(j) for j in j_of} | {n_times - 1}))
    return dataclasses.replace(
        plan, null_times=chosen["fgsm"], null_pgd_times=chosen["pgd"]
    )


def _pad(x: np.ndarray, size: int) -> np.ndarray:
    """NumPy twin of `ntkadv.kernels.blocked.pad_rows` (no eager jax ops, which
    compile once per shape): repeat the last row up to `size` rows."""
    short = size - x.shape[0]
    return x if short == 0 else np.concatenate([x, np.repeat(x[-1:], short, axis=0)])


def balanced_block(rows: int, block: int) -> int:
    """Rows per call when `rows` are split into ceil(rows / block) equal calls (the
    padding of the last call is then < the number of calls)."""
    calls = -(-rows // max(1, block))
    return -(-rows // max(1, calls))


@functools.lru_cache(maxsize=16)
def _rows_jit(kernel_fn: KernelFn, shape: tuple) -> Callable:
    """Jitted (x (b, d) flattened, x_train) -> Θ(x, X), one per kernel and shape."""
    return jax.jit(lambda xb, xtr: kernel_fn(xb.reshape((-1,) + shape), xtr))


def kernel_rows_fn(kernel_fn: KernelFn, x_train, block: int) -> Callable:
    """x (M, d) flattened -> Θ(x, X) (M, n) float64, in blocks of <= `block` rows.

    One jitted call per block (`balanced_block` rows, the last block padded: one
    compiled shape per M; x_train is an argument, not a constant; the jitted
    function is shared by every call with the same kernel and input shape). Rows
    are independent, so any block size gives the same values.
    """
    xt = jnp.asarray(x_train)
    fn = _rows_jit(kernel_fn, tuple(xt.shape[1:]))

    def rows(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        out = np.empty((x.shape[0], xt.shape[0]), dtype=np.float64)
        b = balanced_block(x.shape[0], block)
        for i0, i1 in block_starts(x.shape[0], b):
            out[i0:i1] = np.asarray(fn(_pad(x[i0:i1], b), xt))[: i1 - i0]
        return out

    return rows


@dataclasses.dataclass
class SuiteResults:
    """Per-point results of `attack_points` over m evaluation points.

    Attributes:
        correct: (attack, label set s, time j, ε index) -> (m,) bool correctness
            under that attack (not AND-ed with the clean prediction), in the order
            the jobs ran.
        arrays: true-label array name (``x_adv/...``, ``f/...``) -> per-tile parts
            along the point axis (x_adv flattened (r, d) float32, f (r, k)).
    """

    correct: dict[tuple[str, int, int, int], np.ndarray]
    arrays: dict[str, list[np.ndarray]]

    def put(self, key, rows: slice, value: np.ndarray, m: int) -> None:
        if key not in self.correct:
            self.correct[key] = np.zeros(m, dtype=bool)
        self.correct[key][rows] = value

    def keep(self, name: str, value: np.ndarray) -> None:
        self.arrays.setdefault(name, []).append(np.asarray(value))


def attack_suite(
    kernel_fn: KernelFn,
    x_train,
    x_eval,
    y_eval,
    task: Task,
    coefs,
    f_clean,
    contract: Callable[[int, int, np.ndarray], np.ndarray],
    plan: SuitePlan,
    signs: np.ndarray | None = None,
    kernel_matrix_fn: Callable | None = None,
    log=None,
) -> tuple[list[dict], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """All attacks of one kernel's machines at every planned (t, ε); robust accuracies.

    Closed-form attacks (FGSM, first-order) use the cached gradients at the clean
    points; their sign direction does not depend on ε, so the ε-curve costs one
    kernel evaluation per ε. PGD recomputes gradients by VJP through `kernel_fn`.

    Args:
        kernel_fn: analytic NTK.
        x_train: (n, *shape) training inputs.
        x_eval: (m, *shape) clean evaluation points (m = plan.n_eval).
        y_eval: (m, k) their targets.
        task: "binary" or "multiclass".
        coefs: (S, T, n, k) c_t of every label set (set 0 true, 1..P permuted) and
            time, S = 1 + plan.n_perm.
        f_clean: (S, T, m, k) f_t at the clean points.
        contract: (i0, i1, C (n, K)) -> (i1 − i0, d, K) ∇ₓ Σ_j Θ(x_i, x_j) C_j at
            evaluation points i0:i1 (supp. Eq. 9, the Jacobian cache).
        plan: `make_plan` output.
        signs: (m, d) ±1 random-sign directions (`ntkadv.claims.nulls.random_signs`);
            None: no random-sign control.
        kernel_matrix_fn: x (M, d) -> Θ(x, X) (M, n); default `kernel_rows_fn`.
        log: optional logger.

    Returns:
        rows: one dict per (labels, attack, t, ε) with keys labels ("true",
            "perm1", ...), attack, tau, t, eps, eps_mult, accuracy (robust: clean
            AND attacked correct), accuracy_attacked (plain), n_eval; "clean" rows
            at ε = 0 for every t;
        arrays: for the true labels, x_clean, y, taus, times, eps_values and per
            job ``x_adv/{attack}/t{j}_e{e}`` (float32, input shape) and
            ``f/{attack}/t{j}_e{e}`` (m, k) predictions (``f/clean/t{j}``);
        pointwise: per-point correctness at the dataset's ε, ``clean`` and each
            attack (S, T, m) int8 (1 / 0, −1 where not run); with extra ε
            (plan.extra_eps) also ``extra_fgsm`` and ``extra_pgd`` (E, S, T, m).
    """
    res = attack_points(
        kernel_fn, x_train, x_eval, y_eval, task, coefs, f_clean, contract, plan,
        signs, kernel_matrix_fn, log,
    )  # fmt: skip
    return collect_results(res, plan, f_clean, y_eval, x_eval, task, signs is not None)


def attack_points(
    kernel_fn: KernelFn,
    x_train,
    x_eval,
    y_eval,
    task: Task,
    coefs,
    f_clean,
    contract: Callable[[int, int, np.ndarray], np.ndarray],
    plan: SuitePlan,
    signs: np.ndarray | None = None,
    kernel_matrix_fn: Callable | None = None,
    log=None,
) -> SuiteResults:
    """The per-point part of `attack_suite` (same arguments): every attack on every
    evaluation point, not yet reduced to accuracies. Points are independent, so
    the results of contiguous point ranges, joined in order (`join_results`), equal
    those of the whole set (the evaluation-point shards of rule attack_ntk).

    Returns:
        `SuiteResults` of the m = x_eval.shape[0] points.
    """
    x_eval, y_eval = np.asarray(x_eval), np.asarray(y_eval)
    coefs, f_clean = np.asarray(coefs), np.asarray(f_clean)
    if coefs.shape[0] != 1 + plan.n_perm:
        raise ValueError(
            f"coefs has {coefs.shape[0]} label sets, plan wants {1 + plan.n_perm}"
        )
    if kernel_matrix_fn is None:
        kernel_matrix_fn = kernel_rows_fn(kernel_fn, x_train, plan.block_size)
    suite = _Suite.build(
        kernel_fn, x_train, x_eval, y_eval, task, coefs, f_clean, plan, signs,
        kernel_matrix_fn,
    )  # fmt: skip
    res = SuiteResults({}, {})
    tiles = block_starts(suite.m, suite.tile)
    progress = Progress(log, f"attack tiles of {suite.tile} points", len(tiles))
    for i0, i1 in tiles:
        rows = slice(i0, i1)
        grads = np.asarray(contract(i0, i1, suite.c_need))  # (r, d, |pairs|·k)
        _closed_form_tile(suite, rows, grads, res)
        _pgd_tile(suite, rows, grads, res)
        progress(1)
    return res


def join_results(parts: list[SuiteResults]) -> SuiteResults:
    """`SuiteResults` of contiguous point ranges joined in point order (the jobs
    and arrays of the first part, in its order; every part must have the same)."""
    keys = list(parts[0].correct)
    names = list(parts[0].arrays)
    for i, part in enumerate(parts[1:], 1):
        if list(part.correct) != keys or list(part.arrays) != names:
            raise ValueError(f"part {i} ran other attacks than part 0")
    return SuiteResults(
        {key: np.concatenate([p.correct[key] for p in parts]) for key in keys},
        {name: [a for p in parts for a in p.arrays[name]] for name in names},
    )


def collect_results(
    res: SuiteResults,
    plan: SuitePlan,
    f_clean,
    y_eval,
    x_eval,
    task: Task,
    random_sign: bool = True,
) -> tuple[list[dict], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The reduction of `attack_suite`: accuracy rows (means over the points),
    the true-label arrays and the per-point tables, from the per-point results of
    all m points (`attack_points`, or shards joined by `join_results`).

    Args:
        res: per-point results of the m points.
        plan: the suite's plan.
        f_clean: (S, T, m, k) clean predictions; y_eval (m, k); x_eval (m, *shape).
        task: "binary" or "multiclass".
        random_sign: whether the random-sign control ran.

    Returns:
        (rows, arrays, pointwise) as `attack_suite`.
    """
    return _collect(
        res,
        plan,
        np.asarray(f_clean),
        np.asarray(y_eval),
        np.asarray(x_eval),
        task,
        FIRST_ORDER[task],
        random_sign,
    )


@dataclasses.dataclass
class _Suite:
    """What every evaluation tile of `attack_suite` shares (see its Args).

    Attributes (beyond attack_suite's arguments):
        x: (m, d) flattened evaluation points.
        col: (label set s, time j) -> its column block in `c_need`.
        c_need: (n, |pairs|·k) c_t of every (s, j) attacked at some time, the
            true-label columns first.
        c_true: (n, T·k) c_t of the true labels at every time (machine j).
        c_null: (n, P·T·k) c_t of the permuted labels (machine (s − 1)·T + j).
        fo_names: the first-order attacks of the task.
        rs_eps: ε indices of the random-sign control.
        tile: evaluation points per tile (`TILE_FLOATS` floats of the true-label
            work; the permuted machines' few attacks come on top, so the tile and
            with it every true-label number are those of P = 0).
        pgd_fn: `pgd_rows_fn` (None: no PGD steps).
        x_train_j, c_true_j, c_null_j: x_train, c_true and c_null as jax arrays
            (PGD arguments).
    """

    task: Task
    plan: SuitePlan
    coefs: np.ndarray
    f_clean: np.ndarray
    y_eval: np.ndarray
    signs: np.ndarray | None
    kernel_matrix_fn: Callable
    x: np.ndarray
    col: dict[tuple[int, int], int]
    c_need: np.ndarray
    c_true: np.ndarray
    c_null: np.ndarray
    fo_names: tuple[str, ...]
    rs_eps: list[int]
    tile: int
    pgd_fn: Callable | None
    x_train_j: Any
    c_true_j: Any
    c_null_j: Any

    @property
    def m(self) -> int:
        return self.x.shape[0]

    @classmethod
    def build(
        cls, kernel_fn, x_train, x_eval, y_eval, task, coefs, f_clean, plan, signs,
        kernel_matrix_fn,
    ) -> _Suite:  # fmt: skip
        """The shared arrays and the tile size (the cost model of the module doc)."""
        shape, m = x_eval.shape[1:], x_eval.shape[0]
        n_sets, n_times, n, k = coefs.shape
        x = x_eval.reshape(m, -1)
        d = x.shape[1]
        pairs = [(s, j) for s in range(n_sets) for j in plan.times_of(s)]
        col = {p: i for i, p in enumerate(pairs)}
        c_need = np.concatenate([coefs[s, j] for s, j in pairs], axis=1)
        c_true = np.ascontiguousarray(
            coefs[0].transpose(1, 0, 2).reshape(n, n_times * k)
        )
        c_null = np.ascontiguousarray(
            coefs[1:].transpose(2, 0, 1, 3).reshape(n, (n_sets - 1) * n_times * k)
        )
        fo_names = FIRST_ORDER[task]
        rs_eps = sorted({e for j in plan.time_idx for e in plan.eps_list(0, j)})
        per_point = (
            len(plan.times_of(0)) * k
            + len(plan.time_idx) * (1 + len(fo_names))
            + len(rs_eps)
            + len(plan.eps_values) * (1 + len(fo_names))
            + len(plan.extra_eps) * len(plan.time_idx)
        )
        tile = max(1, min(m, TILE_FLOATS // max(1, d * per_point)))
        pgd_fn = (
            pgd_rows_fn(kernel_fn, task, plan.pgd_steps, shape)
            if plan.pgd_steps
            else None
        )
        return cls(
            task, plan, coefs, f_clean, y_eval, signs, kernel_matrix_fn, x, col,
            c_need, c_true, c_null, fo_names, rs_eps, tile, pgd_fn,
            jnp.asarray(x_train), jnp.asarray(c_true), jnp.asarray(c_null),
        )  # fmt: skip

    def grad_f(self, grads: np.ndarray, s: int, j: int) -> np.ndarray:
        """(r, d, k) ∇ₓf_t of label set s at time j, from a tile's contraction."""
        k = self.coefs.shape[-1]
        c0 = self.col[(s, j)] * k
        return grads[:, :, c0 : c0 + k]


def _closed_form_points(
    suite: _Suite, rows: slice, grads: np.ndarray, sets: range
) -> tuple[list[tuple[str, int, int, int]], list[np.ndarray]]:
    """Closed-form jobs (attack, s, j, ε index) of label sets `sets` on one tile
    and their perturbed points (FGSM for every label set at its `closed_times`,
    first-order for the true labels)."""
    plan, task, f_clean = suite.plan, suite.task, suite.f_clean
    xt, yt = suite.x[rows], suite.y_eval[rows]
    jobs: list[tuple[str, int, int, int]] = []
    points: list[np.ndarray] = []
    for s in sets:
        for j in plan.closed_times(s):
            grad_f = suite.grad_f(grads, s, j)
            dirs = {"fgsm": fgsm_direction(f_clean[s, j, rows], grad_f, yt, task)}
            if s == 0:
                for method in suite.fo_names:
                    dirs[method] = first_order_direction(
                        f_clean[s, j, rows], grad_f, method
                    )
            for name, direction in dirs.items():
                eps_idx = (
                    plan.attack_eps(s, j) if name == "fgsm" else plan.eps_list(s, j)
                )
                for e in eps_idx:
                    jobs.append((name, s, j, e))
                    points.append(perturb(xt, direction, plan.eps_values[e]))
    return jobs, points


def _closed_form_tile(
    suite: _Suite, rows: slice, grads: np.ndarray, res: SuiteResults
) -> None:
    """Every closed-form attack and the random-sign control on one tile: the
    true-label points and the random-sign points in one blocked kernel-row pass,
    the permuted-label machines' points in another (so the true-label rows are
    evaluated in the same blocks whatever the null plan)."""
    plan, task, coefs = suite.plan, suite.task, suite.coefs
    n_sets, n_times, _, k = coefs.shape
    yt, m = suite.y_eval[rows], suite.m
    r = rows.stop - rows.start
    rs_points = (
        [
            perturb(suite.x[rows], suite.signs[rows], plan.eps_values[e])
            for e in suite.rs_eps
        ]
        if suite.signs is not None
        else []
    )
    for sets in (range(1), range(1, n_sets)):
        jobs, points = _closed_form_points(suite, rows, grads, sets)
        n_closed = len(jobs)
        if sets.start == 0:
            points = points + rs_points
        k_rows = suite.kernel_matrix_fn(np.concatenate(points)) if points else None
        for q, (name, s, j, e) in enumerate(jobs):
            f_adv = k_rows[q * r : (q + 1) * r] @ coefs[s, j]
            res.put((name, s, j, e), rows, predictions_correct(f_adv, yt, task), m)
            if s == 0:
                res.keep(f"x_adv/{name}/t{j}_e{e}", points[q].astype(np.float32))
                res.keep(f"f/{name}/t{j}_e{e}", f_adv)
        if sets.start != 0 or not rs_points:
            continue
        for q, e in enumerate(suite.rs_eps):
            block = k_rows[(n_closed + q) * r : (n_closed + q + 1) * r]
            f_true = (block @ suite.c_true).reshape(r, n_times, k)
            f_null = (block @ suite.c_null).reshape(r, n_sets - 1, n_times, k)
            for s in range(n_sets):
                for j in plan.closed_times(s):
                    if e in plan.eps_list(s, j):
                        f_rs = f_true[:, j] if s == 0 else f_null[:, s - 1, j]
                        ok = predictions_correct(f_rs, yt, task)
                        res.put(("random_sign", s, j, e), rows, ok, m)


def _pgd_tile(suite: _Suite, rows: slice, grads: np.ndarray, res: SuiteResults) -> None:
    """PGD on one tile: one row per (point, machine, ε), in blocks of block_size
    rows, started from the closed-form loss gradient; the true-label machine's rows
    and the permuted machines' rows in separate blocks (the true-label blocks do not
    depend on the null plan)."""
    plan = suite.plan
    n_sets, n_times = suite.coefs.shape[:2]
    if suite.pgd_fn is None:
        return
    for sets in (range(1), range(1, n_sets)):
        pjobs = [
            (s, j, e)
            for s in sets
            for j in plan.pgd_times(s)
            for e in plan.attack_eps(s, j, pgd=True)
        ]
        if not pjobs:
            continue
        if sets.start == 0:
            c_j, cidx = suite.c_true_j, [j for _, j, _ in pjobs]
        else:
            c_j, cidx = suite.c_null_j, [(s - 1) * n_times + j for s, j, _ in pjobs]
        _pgd_jobs(suite, rows, grads, res, pjobs, c_j, cidx)


def _pgd_jobs(
    suite: _Suite,
    rows: slice,
    grads: np.ndarray,
    res: SuiteResults,
    pjobs: list[tuple[int, int, int]],
    c_j: Any,
    machines: list[int],
) -> None:
    """PGD jobs (s, j, ε index) on one tile; machine q of `pjobs` is column block
    machines[q] of c_j (n, M·k)."""
    plan, task, f_clean = suite.plan, suite.task, suite.f_clean
    k = suite.coefs.shape[-1]
    xt, yt, m = suite.x[rows], suite.y_eval[rows], suite.m
    r = rows.stop - rows.start
    x0 = np.concatenate([xt] * len(pjobs))
    y_rows = np.concatenate([yt] * len(pjobs))
    g0 = np.concatenate(
        [
            loss_input_gradient(
                f_clean[s, j, rows], suite.grad_f(grads, s, j), yt, task
            )
            for s, j, _ in pjobs
        ]
    )
    cidx = np.repeat(machines, r)
    eps = np.repeat([plan.eps_values[e] for _, _, e in pjobs], r)
    b = balanced_block(x0.shape[0], plan.block_size)
    x_adv = np.empty_like(x0)
    f_adv = np.empty((x0.shape[0], k))
    for p0, p1 in block_starts(x0.shape[0], b):
        args = [
            _pad(a[p0:p1], b)
            for a in (x0, y_rows, g0, cidx, eps, plan.pgd_rel_step * eps)
        ]
        xa, fa = suite.pgd_fn(*args, suite.x_train_j, c_j)
        x_adv[p0:p1] = np.asarray(xa)[: p1 - p0]
        f_adv[p0:p1] = np.asarray(fa)[: p1 - p0]
    for q, (s, j, e) in enumerate(pjobs):
        sl = slice(q * r, (q + 1) * r)
        res.put(("pgd", s, j, e), rows, predictions_correct(f_adv[sl], yt, task), m)
        if s == 0:
            res.keep(f"x_adv/pgd/t{j}_e{e}", x_adv[sl].astype(np.float32))
            res.keep(f"f/pgd/t{j}_e{e}", f_adv[sl])


def _collect(res, plan, f_clean, y_eval, x_eval, task, fo_names, random_sign):
    """Rows, the true-label arrays and the per-point tables from the tiles' results."""
    n_sets, n_times, m = f_clean.shape[0], f_clean.shape[1], x_eval.shape[0]
    shape = x_eval.shape[1:]
    clean = predictions_correct(f_clean, y_eval, task)  # (S, T, m)
    eps0 = plan.eps_values[plan.default_eps]
    rows: list[dict] = []
    for s in range(n_sets):
        for j in range(n_times):
            acc = float(clean[s, j].mean())
            rows.append(_row(s, "clean", plan, j, 0.0, acc, acc, m))
    for (name, s, j, e), ok in res.correct.items():
        eps = plan.eps_values[e]
        rows.append(
            _row(
                s, name, plan, j, eps / eps0,
                float(np.mean(ok & clean[s, j])), float(np.mean(ok)), m,
            )
        )  # fmt: skip
    arrays: dict[str, np.ndarray] = {
        "x_clean": x_eval.astype(np.float32),
        "y": y_eval,
        "taus": np.asarray(plan.taus),
        "times": np.asarray(plan.times),
        "eps_values": np.asarray(plan.eps_values),
    }
    for j in range(n_times):
        arrays[f"f/clean/t{j}"] = np.asarray(f_clean[0, j])
    for name, parts in res.arrays.items():
        value = np.concatenate(parts)
        arrays[name] = value.reshape(m, *shape) if name.startswith("x_adv") else value
    attacks = ["fgsm", "pgd", *fo_names] + (["random_sign"] if random_sign else [])
    pointwise = {"clean": clean.astype(np.int8)}
    for name in attacks:
        table = np.full((n_sets, n_times, m), -1, dtype=np.int8)
        for (a, s, j, e), ok in res.correct.items():
            if a == name and e == plan.default_eps:
                table[s, j] = ok
        pointwise[name] = table
    for name in ("fgsm", "pgd") if plan.extra_eps else ():
        table = np.full((len(plan.extra_eps), n_sets, n_times, m), -1, np.int8)
        for i, e_extra in enumerate(plan.extra_eps):
            for (a, s, j, e), ok in res.correct.items():
                if a == name and e == e_extra:
                    table[i, s, j] = ok
        pointwise[f"extra_{name}"] = table
    return rows, arrays, pointwise


def _row(s, attack, plan, j, eps_mult, acc, acc_attacked, n_eval) -> dict:
    eps = plan.eps_values[plan.default_eps] * eps_mult
    return {
        "labels": "true" if s == 0 else f"perm{s}",
        "attack": attack,
        "tau": plan.taus[j],
        "t": plan.times[j],
        "eps": eps,
        "eps_mult": eps_mult,
        "accuracy": acc,
        "accuracy_attacked": acc_attacked,
        "n_eval": n_eval,
    }
