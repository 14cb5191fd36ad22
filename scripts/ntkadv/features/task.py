"""Rules of the features stage: score_features, evaluate_topr_kernels, consistency.

Each `run_*` reads its inputs, calls the feature algebra and writes its outputs.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

import numpy as np

from ntkadv import h5io
from ntkadv.timing import timed


@dataclasses.dataclass(frozen=True)
class ScoreSettings:
    """Params of rule score_features.

    Attributes:
        arch: the architecture's config entry.
        eps: the dataset's ℓ∞ budget.
        n_eval: evaluation points (first n of the test subset), None = all.
        top_k: first K eigenfeatures scored.
        chunk: features whose perturbed kernel rows are evaluated per call.
        image_indices, image_reference_n: notebook eigen-indices (at n_ref) imaged.
        image_test_index: test image of the gradient grid.
        prop1_points: evaluation points of the Prop. 1 check (binary datasets).
        block: kernel block size; x64: float64 kernels.
    """

    arch: dict[str, Any]
    eps: float
    n_eval: int | None
    top_k: int
    chunk: int
    image_indices: tuple[int, ...]
    image_reference_n: int
    image_test_index: int
    prop1_points: int
    block: int
    x64: bool


@dataclasses.dataclass(frozen=True)
class ToprSettings:
    """Params of rule evaluate_topr_kernels (supp. D.3).

    Attributes:
        arch, eps, n_eval, block, x64: as `ScoreSettings`.
        n_val: first n_val test points rank the features; the next n_eval evaluate.
        n_candidates: leading eigenfeatures ranked (None = all).
        grid: numbers r of kept features.
        pgd_steps, pgd_rel_step: PGD iterations and step / ε.
    """

    arch: dict[str, Any]
    eps: float
    n_eval: int | None
    block: int
    x64: bool
    n_val: int
    n_candidates: int | None
    grid: tuple[int, ...]
    pgd_steps: int
    pgd_rel_step: float


class _Caches:
    """Prepared data, Gram, spectrum, Jacobian cache and kernel rows of one kernel."""

    def __init__(self, inputs: dict[str, str], arch: dict, block: int, x64: bool):
        from ntkadv.data import load_prepared
        from ntkadv.kernels.analytic import kernel_fn_from_spec
        from ntkadv.kernels.jacobians import load_input_jacobian

        self.ds = load_prepared(inputs["data"])
        self.task = self.ds["attrs"]["task"]
        self.classes = list(self.ds["attrs"]["classes"])
        self.gram_path = inputs["gram"]
        eig = h5io.read(inputs["eigh"], ["eigvals", "eigvecs"])
        self.eigvals, self.eigvecs = eig["eigvals"], eig["eigvecs"]
        self.dtype = np.float64 if x64 else np.float32
        self.x_train = self.ds["x_train"].astype(self.dtype)
        self.kernel_fn = kernel_fn_from_spec(arch)
        self.block = block
        self.jac = load_input_jacobian(inputs["jacobian"])

    def rows(self, x_flat: np.ndarray) -> np.ndarray:
        """Θ(x, X_train) (p, n) at flattened points x (p, d)."""
        from ntkadv.kernels.blocked import ntk_gram_blocked

        x = x_flat.reshape(-1, *self.x_train.shape[1:]).astype(self.dtype)
        return ntk_gram_blocked(
            self.kernel_fn, x, self.x_train, self.block, symmetric=False
        )


def run_score_features(
    inputs: dict[str, str],
    outputs: dict[str, str],
    s: ScoreSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule score_features: usefulness, FGSM robustness, gradient images, Prop. 1."""
    from ntkadv.features import prop1, scoring, tables

    c = _Caches(inputs, s.arch, s.block, s.x64)
    ds, task, classes = c.ds, c.task, c.classes
    gram = h5io.read(c.gram_path)
    eigvals, eigvecs = c.eigvals, c.eigvecs
    n, m = eigvals.size, min(s.n_eval or 10**9, ds["x_test"].shape[0])
    img_idx = scoring.scale_feature_indices(s.image_indices, n, s.image_reference_n)
    indices = np.union1d(np.arange(min(s.top_k, n)), img_idx)
    k_eval = gram["k_test_train"][:m]
    with timed(log, f"one contraction for {indices.size} features, {m} points"):
        grad_p = c.jac.eval_subset(0, m).contract(eigvecs[:, indices])
    common = {"eigvals": eigvals, "eigvecs": eigvecs, "y_train": ds["y_train"]}
    with timed(log, f"FGSM robustness ({indices.size}x{m} perturbed kernel rows)"):
        scores = scoring.score_features(
            **common,
            indices=indices,
            k_eval_train=k_eval,
            grad_p=grad_p,
            x_eval=c.jac.x_eval[:m],
            y_eval=ds["y_test"][:m],
            labels_eval=ds["labels_test"][:m],
            kernel_rows_fn=c.rows,
            eps=s.eps,
            task=task,
            num_classes=len(classes),
            chunk=s.chunk,
        )
    t = s.image_test_index
    grads = scoring.gradient_image_stack(
        **common,
        indices=img_idx,
        k_point_train=k_eval[t : t + 1],
        grad_p_point=grad_p[t : t + 1][:, :, np.searchsorted(indices, img_idx)],
        y_point=ds["y_test"][t : t + 1],
        task=task,
    )
    check = {}
    if task == "binary":
        q = min(s.prop1_points, m)
        check = prop1.proposition1_check(
            **common,
            gram=gram["k_train_train"],
            k_eval_train=k_eval[:q],
            y_eval=ds["y_test"][:q],
            contract=c.jac.eval_subset(0, q).contract,
        )
        log.info("Proposition 1 check: %s", check)
    arrays = {f: getattr(scores, f) for f in scores.__dataclass_fields__}
    arrays |= {
        "eigvals": eigvals[indices],
        "image_indices": img_idx,
        "gradients": grads,
    }
    attrs = h5io.provenance(
        **ids,
        task=task,
        classes=classes,
        n_train=n,
        n_eval=m,
        eps=s.eps,
        features=dataclasses.asdict(s),
        arch_spec=s.arch,
        image_test_index=t,
        image_shape=list(c.x_train.shape[1:]),
        prop1=check,
    )
    h5io.write(outputs["scores"], arrays, attrs)
    table = tables.scores_frame(scores, eigvals, classes)
    table.insert(0, "arch", ids["arch"])
    table.insert(0, "dataset", ids["dataset"])
    table.to_csv(outputs["csv"], index=False)


def run_evaluate_topr(
    inputs: dict[str, str],
    outputs: dict[str, str],
    s: ToprSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule evaluate_topr_kernels: rank on a validation split, evaluate f'_r."""
    import jax
    import pandas as pd

    from ntkadv.attacks.pgd import loss_gradient_fn, pgd
    from ntkadv.features import topr
    from ntkadv.spectra.predictor import coefficients

    c = _Caches(inputs, s.arch, s.block, s.x64)
    ds, task = c.ds, c.task
    eigvals, eigvecs = c.eigvals, c.eigvecs
    k_test = h5io.read(c.gram_path, ["k_test_train"])["k_test_train"]
    n, v, eps = eigvals.size, s.n_val, s.eps
    stop = min(v + (s.n_eval or 10**9), k_test.shape[0])
    if not 0 < v < stop:
        raise ValueError(f"topr.n_val={v} leaves no evaluation points (m={stop})")
    y_train = ds["y_train"]
    val, ev = slice(0, v), slice(v, stop)
    cand = np.arange(min(s.n_candidates or n, n))
    with timed(log, f"ranking {cand.size} features on {v} validation points"):
        ranked, rob_val = topr.rank_by_validation_robustness(
            eigvals=eigvals,
            eigvecs=eigvecs,
            y_train=y_train,
            candidates=cand,
            k_val_train=k_test[val],
            contract=c.jac.eval_subset(0, v).contract,
            x_val=c.jac.x_eval[val],
            y_val=ds["y_test"][val],
            labels_val=ds["labels_test"][val],
            kernel_rows_fn=c.rows,
            eps=eps,
            task=task,
            num_classes=len(c.classes),
        )
    rs = topr.topr_grid(cand.size, s.grid)
    coefs = topr.topr_coefficients(eigvals, eigvecs, y_train, ranked, rs)
    c_full = coefficients((eigvals, eigvecs), y_train, math.inf, 1.0)
    grad_fn = jax.jit(loss_gradient_fn(c.kernel_fn, task))

    def pgd_fn(coef: np.ndarray) -> np.ndarray:
        return pgd(
            c.kernel_fn,
            c.jac.x_eval[ev],
            c.x_train,
            coef,
            ds["y_test"][ev],
            task,
            eps,
            s.pgd_rel_step * eps,
            s.pgd_steps,
            grad_fn=grad_fn,
        )

    with timed(log, f"top-r evaluation on {stop - v} points, r = {rs.tolist()}"):
        res = topr.evaluate_topr(
            coefs=coefs,
            c_full=c_full,
            k_eval_train=k_test[ev],
            x_eval=c.jac.x_eval[ev],
            y_eval=ds["y_test"][ev],
            contract=c.jac.eval_subset(v, stop).contract,
            kernel_rows_fn=c.rows,
            pgd_fn=pgd_fn,
            eps=eps,
            task=task,
        )
    curves = {k: np.asarray(a) for k, a in res.items() if np.ndim(a) == 1}
    full = {k: float(a) for k, a in res.items() if np.ndim(a) == 0}
    log.info("full kernel: %s", full)
    attrs = h5io.provenance(
        **ids,
        task=task,
        eps=eps,
        n_val=v,
        n_eval=stop - v,
        topr=dataclasses.asdict(s),
        arch_spec=s.arch,
        **full,
    )
    arrays = {"r": rs, "ranked": ranked, "candidates": cand, "val_robustness": rob_val}
    h5io.write(outputs["topr"], arrays | curves, attrs)
    table = pd.DataFrame({"r": rs, **curves})
    table.insert(0, "arch", ids["arch"])
    table.insert(0, "dataset", ids["dataset"])
    table.to_csv(outputs["csv"], index=False)
