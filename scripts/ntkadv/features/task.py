"""Rules of the features stage: score_features, evaluate_topr_kernels, consistency.

Each task (named after its rule) reads its inputs, calls the feature algebra and
writes its outputs.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
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
        spread: further eigen-indices scored, evenly spread over the rest of the
            spectrum (`scoring.spread_indices`; None: all of them).
        frequency_k: gradient images of the first and of the last frequency_k
            eigenfeatures outside the null space at the image test point (the
            frequency row of main Fig. 3, `ntkadv.features.frequency`).
        chunk: features whose gradients are contracted and whose perturbed kernel
            rows are evaluated per pass.
        image_indices, image_reference_n: notebook eigen-indices (at n_ref) imaged
            and tabulated (empty for kernels that are neither).
        image_test_index: test image of the gradient grid.
        prop1_points: evaluation points of the Prop. 1 check (binary datasets).
        block: kernel block size (pairs per call and training points per block);
        x64: float64 kernels.
        extra_eps: further ℓ∞ budgets (datasets.<d>.extra_eps) at which the same
            features are also scored, from the same contraction (findings 1 and 2
            off the paper-ε floor); empty: the paper's ε only.
    """

    arch: dict[str, Any]
    eps: float
    n_eval: int | None
    top_k: int
    spread: int | None
    frequency_k: int
    chunk: int
    image_indices: tuple[int, ...]
    image_reference_n: int
    image_test_index: int
    prop1_points: int
    block: int
    x64: bool
    extra_eps: tuple[float, ...] = ()


@dataclasses.dataclass(frozen=True)
class ToprSettings:
    """Params of rule evaluate_topr_kernels (supp. D.3).

    Attributes:
        arch, eps, n_eval, block, x64: as `ScoreSettings`.
        n_val: first n_val test points rank the features; the next n_eval evaluate.
        n_candidates: leading eigenfeatures ranked (None = all outside the null
            space).
        grid: numbers r of kept features.
        pgd_steps, pgd_rel_step: PGD iterations and step / ε.
        null_permutations: training-label permutations re-ranked and evaluated with
            own FGSM (the null control of finding 7).
        seed: the config seed (`ntkadv.claims.nulls.label_permutations`).
        extra_eps: further ℓ∞ budgets (datasets.<d>.extra_eps) at which the
            features are also ranked and every label set's f'_r evaluated with own
            FGSM (finding 7 off the paper-ε floor); empty: the paper's ε only.
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
    null_permutations: int
    seed: int
    extra_eps: tuple[float, ...] = ()


class _Caches:
    """Prepared data, spectrum (null space marked), Jacobian cache and kernel rows
    of one kernel."""

    def __init__(self, inputs: dict[str, str], arch: dict, block: int, x64: bool):
        from ntkadv.data import load_prepared
        from ntkadv.kernels.analytic import kernel_fn_from_spec
        from ntkadv.kernels.jacobians import load_input_jacobian

        self.ds = load_prepared(inputs["data"])
        self.task = self.ds["attrs"]["task"]
        self.classes = list(self.ds["attrs"]["classes"])
        self.gram_path = inputs["gram"]
        eig = h5io.read(inputs["eigh"], ["eigvals", "eigvecs"])
        eig_attrs = h5io.read_attrs(inputs["eigh"])
        self.eigvals, self.eigvecs = eig["eigvals"], eig["eigvecs"]
        self.clip_floor = float(eig_attrs.get("clip_floor", 0.0))
        self.n_clipped = int(eig_attrs.get("n_clipped", 0))
        self.dtype = np.float64 if x64 else np.float32
        self.x_train = self.ds["x_train"].astype(self.dtype)
        self.x_test = self.ds["x_test"].reshape(len(self.ds["x_test"]), -1)
        self.kernel_fn = kernel_fn_from_spec(arch)
        self.block = block
        self.jac = load_input_jacobian(inputs["jacobian"])
        self.where = f"{inputs['eigh']} ({inputs['gram']})"

    def nonnull(self, log: logging.Logger) -> np.ndarray:
        """Eigen-indices outside the clipped null space (the count is logged)."""
        from ntkadv.features.scoring import nonnull_indices

        valid, excluded = nonnull_indices(self.eigvals, self.clip_floor, self.n_clipped)
        log.info(
            "null space: %d eigenfeature(s) at the clipping floor %.3e excluded from "
            "scoring and ranking (eigh.h5 n_clipped = %d)",
            excluded,
            self.clip_floor,
            self.n_clipped,
        )
        return valid

    def rows(self, x_flat: np.ndarray) -> np.ndarray:
        """Θ(x, X_train) (p, n) at flattened points x (p, d)."""
        from ntkadv.kernels.blocked import ntk_gram_blocked

        x = x_flat.reshape(-1, *self.x_train.shape[1:]).astype(self.dtype)
        return ntk_gram_blocked(
            self.kernel_fn, x, self.x_train, self.block, symmetric=False
        )

    def projector(self):
        """A `PairProjector` over the training set (jitted once per job)."""
        from ntkadv.features.projections import PairProjector

        return PairProjector(
            self.kernel_fn, self.x_train, self.block, self.block, self.dtype
        )

    def label_free(
        self,
        indices: np.ndarray,
        k_eval_train: np.ndarray,
        i0: int,
        i1: int,
        eps: float,
        chunk: int,
        project,
        log: logging.Logger | None = None,
    ):
        """`label_free_projections` of `indices` at test points i0:i1, contracted
        and perturbed `chunk` features at a time (progress lines to `log`)."""
        return self.label_free_at(
            indices, k_eval_train, i0, i1, (eps,), chunk, project, log
        )[0]

    def label_free_at(
        self,
        indices: np.ndarray,
        k_eval_train: np.ndarray,
        i0: int,
        i1: int,
        eps_values: tuple[float, ...],
        chunk: int,
        project,
        log: logging.Logger | None = None,
        point_block: int | None = None,
    ) -> list:
        """`label_free` at every ε of `eps_values` (one `LabelFree` each, in that
        order): perturbed rows per ε (`scoring.label_free_projections_at`), `chunk`
        features per step.

        The Jacobian contraction D(x)ᵀ v_i: with `point_block` None, one call for
        every index (a dense-family cache recomputes D(x) per call,
        `ntkadv.kernels.jacobians.ImplicitJacobian`), held as (m, d, K) float64
        (score_features); else per chunk, `point_block` points at a time, keeping
        only the chunk's signs (`scoring.contraction_signs`: (m, d, chunk) int8
        and a (point_block, d, chunk) float64 block; top-r, whose K is every
        candidate). Same projections either way; the blocked form recomputes a
        dense-family D once per chunk."""
        from ntkadv.features.rescore import LabelFree
        from ntkadv.features.scoring import (
            contraction_signs,
            label_free_projections_at,
        )
        from ntkadv.timing import Progress

        jac = self.jac.eval_subset(i0, i1)
        if point_block is None:
            grads = jac.contract(self.eigvecs[:, indices])
        parts = []
        starts = range(0, indices.size, chunk)
        progress = Progress(log, f"features scored ({chunk} per step)", len(starts))
        for lo in starts:
            sel = indices[lo : lo + chunk]
            if point_block is None:
                grad_p = grads[:, :, lo : lo + chunk]
            else:
                grad_p = contraction_signs(jac, self.eigvecs[:, sel], point_block)
            parts.append(
                label_free_projections_at(
                    eigvals=self.eigvals,
                    eigvecs=self.eigvecs,
                    indices=sel,
                    k_eval_train=k_eval_train,
                    grad_p=grad_p,
                    x_eval=self.x_test[i0:i1],
                    project=project,
                    eps_values=eps_values,
                )
            )
            progress(1)
        out = []
        for e in range(len(eps_values)):
            at = [p[e] for p in parts]
            lf = LabelFree(
                indices=np.concatenate([p.indices for p in at]),
                eigvals=np.concatenate([p.eigvals for p in at]),
                eigvecs=np.concatenate([p.eigvecs for p in at], axis=1),
                p_clean=np.concatenate([p.p_clean for p in at]),
                p_plus=np.concatenate([p.p_plus for p in at]),
                p_minus=np.concatenate([p.p_minus for p in at]),
            )
            stored = np.where(np.isfinite(lf.p_plus), lf.p_plus, lf.p_minus)
            if not (np.all(np.isfinite(lf.p_clean)) and np.all(np.isfinite(stored))):
                raise FloatingPointError(
                    f"non-finite feature projections from {self.where}: the kernel "
                    "or its spectrum is corrupt; rebuild it (delete the file)"
                )
            out.append(lf)
        return out


def _image_indices(s: ScoreSettings, n: int, valid: np.ndarray, log) -> np.ndarray:
    from ntkadv.features.scoring import scale_feature_indices

    if not s.image_indices:
        return np.zeros(0, dtype=np.int64)
    img = scale_feature_indices(s.image_indices, n, s.image_reference_n)
    dropped = np.setdiff1d(img, valid)
    if dropped.size:
        log.info("image indices %s lie in the null space: dropped", dropped.tolist())
    return np.intersect1d(img, valid)


def _scored_indices(
    s: ScoreSettings, valid: np.ndarray, img_idx: np.ndarray, log: logging.Logger
) -> np.ndarray:
    """The eigen-indices scored: the first top_k outside the null space, `spread`
    more over the rest of the spectrum and the image indices (the counts logged)."""
    from ntkadv.features import scoring

    top = valid[valid < s.top_k]
    spread = scoring.spread_indices(valid, s.top_k, s.spread)
    indices = np.union1d(np.union1d(top, spread), img_idx)
    log.info(
        "scoring %d features: %d leading, %d spread over indices %d-%d, %d images",
        indices.size,
        top.size,
        spread.size,
        int(spread.min()) if spread.size else -1,
        int(spread.max()) if spread.size else -1,
        img_idx.size,
    )
    return indices


def _timed_projections(
    c: _Caches,
    indices: np.ndarray,
    k_eval: np.ndarray,
    s: ScoreSettings,
    log: logging.Logger,
    i0: int = 0,
):
    """(`_Caches.label_free_at` of `indices` at the m test points i0:i0 + m whose
    kernel rows are `k_eval` (m, n), at the paper's ε and then every extra ε,
    seconds)."""
    m, n = k_eval.shape[0], c.eigvals.size
    project = c.projector()
    eps_values = (s.eps, *s.extra_eps)
    start = time.perf_counter()
    with timed(
        log,
        f"label-free projections: {indices.size} features x {m} points at "
        f"eps {', '.join(f'{e:g}' for e in eps_values)}",
    ):
        lfs = c.label_free_at(
            indices, k_eval, i0, i0 + m, eps_values, s.chunk, project, log
        )
    seconds = time.perf_counter() - start
    log.info(
        "%.3f s per feature (%d perturbed kernel rows of %d training points)",
        seconds / indices.size,
        indices.size * m * len(eps_values),
        n,
    )
    return lfs, seconds


def _gradient_images(
    c: _Caches, k_test_train: np.ndarray, t: int, indices: np.ndarray
) -> np.ndarray:
    """Input gradients of the eigenfeatures `indices` at test image t."""
    from ntkadv.features import scoring

    if not indices.size:
        return np.zeros((0, c.x_test.shape[1]))
    return scoring.gradient_image_stack(
        eigvals=c.eigvals,
        eigvecs=c.eigvecs,
        y_train=c.ds["y_train"],
        indices=indices,
        k_point_train=k_test_train[t : t + 1],
        grad_p_point=c.jac.eval_subset(t, t + 1).contract(c.eigvecs[:, indices]),
        y_point=c.ds["y_test"][t : t + 1],
        task=c.task,
    )


def _proposition1(
    c: _Caches,
    gram: dict[str, np.ndarray],
    k_eval: np.ndarray,
    points: int,
    log: logging.Logger,
) -> dict:
    """The Prop. 1 check on the first `points` evaluation points (binary tasks;
    {} otherwise)."""
    from ntkadv.features import prop1

    if c.task != "binary":
        return {}
    q = min(points, k_eval.shape[0])
    ref = gram["k_train_train"]
    if c.n_clipped:  # the identity holds for the clipped spectrum
        ref = (c.eigvecs * c.eigvals) @ c.eigvecs.T
    check = prop1.proposition1_check(
        eigvals=c.eigvals,
        eigvecs=c.eigvecs,
        y_train=c.ds["y_train"],
        gram=ref,
        k_eval_train=k_eval[:q],
        y_eval=c.ds["y_test"][:q],
        contract=c.jac.eval_subset(0, q).contract,
    )
    log.info("Proposition 1 check: %s", check)
    return check


def _extra_arrays(
    lfs: list,
    y_train: np.ndarray,
    y_eval: np.ndarray,
    task: str,
    s: ScoreSettings,
    log: logging.Logger,
) -> dict[str, np.ndarray]:
    """scores.h5 arrays of the extra ε ({} without): their FGSM-side projections
    p_plus_extra / p_minus_extra (E, K, m) (p_clean is shared) and the true-label
    correct_robust_extra (E, K, m), which `summary.load_correctness` checks."""
    from ntkadv.features import rescore

    if not lfs:
        return {}
    robust = []
    for eps, lf in zip(s.extra_eps, lfs, strict=True):
        r = rescore.rescore(lf, y_train, y_eval, task)
        robust.append(r.correct_robust[0])
        log.info(
            "extra eps %g: mean robustness %.4f (paper eps %g: see above)",
            eps,
            float(r.robustness[0].mean()),
            s.eps,
        )
    return {
        "extra_eps": np.asarray(s.extra_eps, dtype=np.float64),
        "p_plus_extra": np.stack([lf.p_plus for lf in lfs]),
        "p_minus_extra": np.stack([lf.p_minus for lf in lfs]),
        "correct_robust_extra": np.stack(robust),
    }


@dataclasses.dataclass(frozen=True)
class _ScorePlan:
    """What a score_features job (or shard) scores: n training points, the first m
    test points, the non-null eigen-indices `valid`, the image indices and every
    scored index, and the test-train kernel rows k_eval (m, n)."""

    n: int
    m: int
    valid: np.ndarray
    img_idx: np.ndarray
    indices: np.ndarray
    k_eval: np.ndarray


def _score_plan(
    c: _Caches, gram: dict[str, np.ndarray], s: ScoreSettings, log: logging.Logger
) -> _ScorePlan:
    n, m = c.eigvals.size, min(s.n_eval or 10**9, c.x_test.shape[0])
    valid = c.nonnull(log)
    img_idx = _image_indices(s, n, valid, log)
    indices = _scored_indices(s, valid, img_idx, log)
    return _ScorePlan(n, m, valid, img_idx, indices, gram["k_test_train"][:m])


def _fixed_points(
    c: _Caches,
    gram: dict[str, np.ndarray],
    plan: _ScorePlan,
    s: ScoreSettings,
    log: logging.Logger,
) -> tuple[dict[str, np.ndarray], dict]:
    """The work at fixed test points (no sum over the evaluation points): the
    gradient images of the image indices and of the frequency row at test image
    `image_test_index`, and the Prop. 1 check on the first prop1_points points.

    Returns:
        (arrays image_indices, gradients, frequency_indices, frequency_gradients;
        the Prop. 1 check).
    """
    t, valid = s.image_test_index, plan.valid
    grads = _gradient_images(c, gram["k_test_train"], t, plan.img_idx)
    k_f = min(s.frequency_k, valid.size // 2)
    freq_idx = np.concatenate([valid[:k_f], valid[valid.size - k_f :]])
    freq_grads = _gradient_images(c, gram["k_test_train"], t, freq_idx)
    check = _proposition1(c, gram, plan.k_eval, s.prop1_points, log)
    arrays = {
        "image_indices": plan.img_idx,
        "gradients": grads,
        "frequency_indices": freq_idx,
        "frequency_gradients": freq_grads,
    }
    return arrays, check


@dataclasses.dataclass(frozen=True)
class _ScoreData:
    """The dataset side of scores.h5: prepared data, task, classes, the spectrum's
    eigenvalues (n,) and the input shape."""

    ds: dict
    task: str
    classes: list
    eigvals: np.ndarray
    image_shape: list


def score_features(
    inputs: dict[str, str],
    outputs: dict[str, str],
    settings: ScoreSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule score_features: label-free projections (the ± trick), the true-label
    usefulness / robustness, gradient images and the Prop. 1 check."""
    s = settings
    c = _Caches(inputs, s.arch, s.block, s.x64)
    gram = h5io.read(c.gram_path)
    plan = _score_plan(c, gram, s, log)
    lfs, seconds = _timed_projections(c, plan.indices, plan.k_eval, s, log)
    fixed, check = _fixed_points(c, gram, plan, s, log)
    data = _ScoreData(c.ds, c.task, c.classes, c.eigvals, list(c.x_train.shape[1:]))
    n_null = plan.n - plan.valid.size
    _write_scores(
        outputs, data, plan.m, n_null, lfs, seconds, fixed, check, s, ids, log
    )


def _write_scores(
    outputs: dict[str, str],
    data: _ScoreData,
    m: int,
    n_null: int,
    lfs: list,
    seconds: float,
    fixed: dict[str, np.ndarray],
    check: dict,
    s: ScoreSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """scores.h5 and scores.csv of one kernel (rule score_features, or the merge
    of its shards): the true-label scores from the label-free projections `lfs`
    (the paper's ε, then every extra ε) of the first m test points."""
    from ntkadv.features import rescore, tables

    ds, task, classes = data.ds, data.task, data.classes
    n = data.eigvals.size
    lf, *lf_extra = lfs
    y_eval, labels_eval = ds["y_test"][:m], ds["labels_test"][:m]
    scores = rescore.feature_scores(
        lf, ds["y_train"], y_eval, labels_eval, task, len(classes)
    )
    if scores.unresolved:
        log.warning(
            "%d correctly classified pairs without a stored FGSM side (p = 0)",
            scores.unresolved,
        )
    arrays = {f: getattr(lf, f) for f in lf.__dataclass_fields__}
    arrays |= {
        "y_train": ds["y_train"],
        "y_eval": y_eval,
        "labels_eval": labels_eval,
        "usefulness": scores.usefulness,
        "robustness": scores.robustness,
        "usefulness_per_class": scores.usefulness_per_class,
        "robustness_per_class": scores.robustness_per_class,
        "correct_clean": scores.correct_clean,
        "correct_robust": scores.correct_robust,
        **fixed,
    }
    arrays |= _extra_arrays(lf_extra, ds["y_train"], y_eval, task, s, log)
    attrs = h5io.provenance(
        **ids,
        task=task,
        classes=classes,
        n_train=n,
        n_eval=m,
        eps=s.eps,
        features=dataclasses.asdict(s),
        arch_spec=s.arch,
        image_test_index=s.image_test_index,
        image_shape=data.image_shape,
        prop1=check,
        sides="toward",
        n_null_space=int(n_null),
        unresolved=scores.unresolved,
        projection_seconds=seconds,
        seconds_per_feature=seconds / max(lf.indices.size, 1),
        **({"extra_eps": list(s.extra_eps)} if s.extra_eps else {}),
    )
    h5io.write(outputs["scores"], arrays, attrs)
    table = tables.scores_frame(scores, data.eigvals, classes)
    table.insert(0, "arch", ids["arch"])
    table.insert(0, "dataset", ids["dataset"])
    table.to_csv(outputs["csv"], index=False)


# ------------------------------------------------------- evaluation-point shards
# A score_features job whose request exceeds config resources.max_job_min runs as
# score_features_shard jobs over contiguous test-point ranges (the label-free
# projections, a sum over points) and merge_feature_shards, which joins their
# projections in point order and writes scores.h5 / scores.csv as the job would.


@dataclasses.dataclass(frozen=True)
class ScoreShardSettings:
    """Params of rule score_features_shard: the kernel's score settings and the
    shard's evaluation points start:stop (of the m scored test points)."""

    score: ScoreSettings
    start: int
    stop: int


#: Label-free projection arrays a shard stores per ε (`rescore.LabelFree`).
_POINT_FIELDS = ("p_clean", "p_plus", "p_minus")


def score_features_shard(
    inputs: dict[str, str],
    outputs: dict[str, str],
    settings: ScoreShardSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule score_features_shard: the label-free projections of every scored
    feature at the test points start:stop; the shard holding point 0 also the
    fixed-point work (`_fixed_points`) and the features' indices, eigenvalues and
    eigenvectors.

    Args:
        inputs: as rule score_features (data, gram, jacobian, eigh).
        outputs: part (HDF5): ``p/<e>/<field>`` (K, r) for ε index e (the paper's
            ε, then each extra ε) and field p_clean / p_plus / p_minus; on the
            first shard indices (K,), eigvals (K,), eigvecs (n, K) and the
            `_fixed_points` arrays; attrs start, stop, m, n_eps, n_null,
            seconds and prop1 (first shard).
        settings: the score settings and the range; ids: {dataset, arch, shard};
        log: the job's logger.
    """
    s, i0, i1 = settings.score, settings.start, settings.stop
    c = _Caches(inputs, s.arch, s.block, s.x64)
    gram = h5io.read(c.gram_path)
    plan = _score_plan(c, gram, s, log)
    if not 0 <= i0 < i1 <= plan.m:
        raise ValueError(f"shard {i0}:{i1} outside the {plan.m} scored points")
    log.info("shard %s: test points %d:%d", ids.get("shard"), i0, i1)
    lfs, seconds = _timed_projections(c, plan.indices, plan.k_eval[i0:i1], s, log, i0)
    arrays = {
        f"p/{e}/{name}": getattr(lf, name)
        for e, lf in enumerate(lfs)
        for name in _POINT_FIELDS
    }
    check: dict = {}
    if i0 == 0:
        fixed, check = _fixed_points(c, gram, plan, s, log)
        lf = lfs[0]
        arrays |= {"indices": lf.indices, "eigvals": lf.eigvals, "eigvecs": lf.eigvecs}
        arrays |= fixed
    attrs = h5io.provenance(
        **ids,
        start=i0,
        stop=i1,
        m=plan.m,
        n_eps=len(lfs),
        n_null=int(plan.n - plan.valid.size),
        seconds=seconds,
        prop1=check,
    )
    h5io.write(outputs["part"], arrays, attrs)


def merge_feature_shards(
    inputs: dict[str, str | list[str]],
    outputs: dict[str, str],
    settings: ScoreSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule merge_feature_shards: the shards' projections joined in point order,
    scored and written as rule score_features's scores.h5 / scores.csv.

    Args:
        inputs: parts (the shard files in point order), data, eigh.
        outputs: scores, csv (as rule score_features).
        settings: the kernel's score settings (those of rule score_features).
        ids: {dataset, arch}; log: the job's logger.
    """
    from ntkadv.data import load_prepared
    from ntkadv.features.rescore import LabelFree

    parts = list(inputs["parts"])
    attrs = [h5io.read_attrs(path) for path in parts]
    bounds = [(a["start"], a["stop"]) for a in attrs]
    m, n_eps = attrs[0]["m"], attrs[0]["n_eps"]
    if (
        bounds[0][0] != 0
        or bounds[-1][1] != m
        or any(a[1] != b[0] for a, b in zip(bounds, bounds[1:], strict=False))
    ):
        raise ValueError(f"shards {bounds} do not tile the {m} scored points")
    log.info("merging %d shards: %s", len(parts), bounds)
    point_keys = [f"p/{e}/{f}" for e in range(n_eps) for f in _POINT_FIELDS]
    shards = [h5io.read(path, point_keys) for path in parts]
    fixed_keys = ["image_indices", "gradients", "frequency_indices"]
    first = h5io.read(
        parts[0], ["indices", "eigvals", "eigvecs", *fixed_keys, "frequency_gradients"]
    )
    lfs = [
        LabelFree(
            indices=first["indices"],
            eigvals=first["eigvals"],
            eigvecs=first["eigvecs"],
            **{
                f: np.concatenate([p[f"p/{e}/{f}"] for p in shards], axis=1)
                for f in _POINT_FIELDS
            },
        )
        for e in range(n_eps)
    ]
    ds = load_prepared(inputs["data"])
    data = _ScoreData(
        ds,
        ds["attrs"]["task"],
        list(ds["attrs"]["classes"]),
        h5io.read(inputs["eigh"], ["eigvals"])["eigvals"],
        list(ds["x_train"].shape[1:]),
    )
    fixed = {k: first[k] for k in [*fixed_keys, "frequency_gradients"]}
    seconds = float(sum(a["seconds"] for a in attrs))
    check = attrs[0]["prop1"]
    _write_scores(
        outputs, data, m, attrs[0]["n_null"], lfs, seconds, fixed, check, settings,
        ids, log,
    )  # fmt: skip


def _topr_split(s: ToprSettings, n_test: int) -> tuple[slice, slice]:
    """(validation, evaluation) slices of the test points: the first n_val rank the
    features, the next n_eval (None: all the rest) evaluate f'_r."""
    v = s.n_val
    stop = min(v + (s.n_eval or 10**9), n_test)
    if not 0 < v < stop:
        raise ValueError(
            f"features.topr.n_val={v} leaves no evaluation points (n_test={stop})"
        )
    return slice(0, v), slice(v, stop)


def _pgd_fn(c: _Caches, s: ToprSettings, ev: slice):
    """PGD (s.pgd_steps steps of s.pgd_rel_step·ε) against the kernel machine with
    coefficients `coef`, at the evaluation points `ev`: coef -> adversarial x."""
    import jax

    from ntkadv.attacks.pgd import loss_gradient_fn, pgd

    grad_fn = jax.jit(loss_gradient_fn(c.kernel_fn, c.task))
    x_ev, y_ev = c.x_test[ev], c.ds["y_test"][ev]

    def pgd_fn(coef: np.ndarray) -> np.ndarray:
        return pgd(
            c.kernel_fn,
            x_ev,
            c.x_train,
            coef,
            y_ev,
            c.task,
            s.eps,
            s.pgd_rel_step * s.eps,
            s.pgd_steps,
            grad_fn=grad_fn,
        )

    return pgd_fn


def _evaluate_label_sets(
    c: _Caches,
    s: ToprSettings,
    k_test: np.ndarray,
    ev: slice,
    ys: np.ndarray,
    ranked: np.ndarray,
    rs: np.ndarray,
    log: logging.Logger,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """f'_r of every label set (true labels first, then the permutations): the
    full top-r evaluation (`topr.evaluate_topr`: transfer and own attacks, PGD) for
    the true labels, own-FGSM correctness for every set.

    Returns:
        (the true labels' `evaluate_topr` results, clean (L, R, m) and own-FGSM
        (L, R, m) correctness of the L label sets).
    """
    from ntkadv.features import topr
    from ntkadv.spectra.predictor import coefficients

    eigvals, eigvecs = c.eigvals, c.eigvecs
    c_full = coefficients((eigvals, eigvecs), c.ds["y_train"], math.inf, 1.0)
    pgd_fn = _pgd_fn(c, s, ev)
    shared = {
        "k_eval_train": k_test[ev],
        "x_eval": c.x_test[ev],
        "y_eval": c.ds["y_test"][ev],
        "contract": c.jac.eval_subset(ev.start, ev.stop).contract,
        "kernel_rows_fn": c.rows,
        "eps": s.eps,
        "task": c.task,
    }
    clean_l, robust_l = [], []
    for j, y in enumerate(ys):
        coefs = topr.topr_coefficients(eigvals, eigvecs, y, ranked[j], rs)
        common = {"coefs": coefs, **shared}
        if j == 0:
            points = ev.stop - ev.start
            with timed(log, f"top-r evaluation on {points} points, r = {rs.tolist()}"):
                res = topr.evaluate_topr(c_full=c_full, pgd_fn=pgd_fn, **common)
            clean, robust = res["clean"], res["fgsm_own"]
        else:
            clean, robust = topr.own_fgsm_correctness(**common)
        clean_l.append(clean)
        robust_l.append(robust)
        log.info(
            "label set %d: own-FGSM robust accuracy %s", j, robust.mean(-1).round(3)
        )
    return res, np.stack(clean_l), np.stack(robust_l)


def _topr_extra(
    c: _Caches,
    s: ToprSettings,
    k_test: np.ndarray,
    ev: slice,
    ys: np.ndarray,
    lf_extra: list,
    val: slice,
    rs: np.ndarray,
    log: logging.Logger,
) -> dict[str, np.ndarray]:
    """Finding 7 at every extra ε ({} without): each label set re-ranked by its
    validation robustness at that ε (`topr.rank_label_sets`) and its f'_r scored
    with own FGSM of that ε (`topr.own_fgsm_correctness`), exactly as at the
    paper's ε. Arrays extra_eps (E,), extra_ranked (E, L, N), extra_clean_sets and
    extra_fgsm_own_sets (E, L, R, m)."""
    from ntkadv.features import topr

    if not lf_extra:
        return {}
    ranked_e, clean_e, robust_e = [], [], []
    contract = c.jac.eval_subset(ev.start, ev.stop).contract
    for eps, lf in zip(s.extra_eps, lf_extra, strict=True):
        ranked, _ = topr.rank_label_sets(lf, ys, c.ds["y_test"][val], c.task)
        clean_l, robust_l = [], []
        with timed(log, f"own-FGSM top-r evaluation at extra eps {eps:g}"):
            for j, y in enumerate(ys):
                coefs = topr.topr_coefficients(c.eigvals, c.eigvecs, y, ranked[j], rs)
                clean, robust = topr.own_fgsm_correctness(
                    coefs=coefs,
                    k_eval_train=k_test[ev],
                    x_eval=c.x_test[ev],
                    y_eval=c.ds["y_test"][ev],
                    contract=contract,
                    kernel_rows_fn=c.rows,
                    eps=eps,
                    task=c.task,
                )
                clean_l.append(clean)
                robust_l.append(robust)
        log.info(
            "extra eps %g, true labels: own-FGSM robust accuracy %s",
            eps,
            robust_l[0].mean(-1).round(3),
        )
        ranked_e.append(ranked)
        clean_e.append(np.stack(clean_l))
        robust_e.append(np.stack(robust_l))
    return {
        "extra_eps": np.asarray(s.extra_eps, dtype=np.float64),
        "extra_ranked": np.stack(ranked_e),
        "extra_clean_sets": np.stack(clean_e),
        "extra_fgsm_own_sets": np.stack(robust_e),
    }


def evaluate_topr_kernels(
    inputs: dict[str, str],
    outputs: dict[str, str],
    settings: ToprSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule evaluate_topr_kernels: rank on a validation split under the true and
    P permuted training labels (label-free projections), evaluate f'_r."""
    import pandas as pd

    from ntkadv.claims.nulls import label_permutations
    from ntkadv.features import rescore, topr

    s = settings
    c = _Caches(inputs, s.arch, s.block, s.x64)
    ds, task = c.ds, c.task
    k_test = h5io.read(c.gram_path, ["k_test_train"])["k_test_train"]
    n, eps = c.eigvals.size, s.eps
    val, ev = _topr_split(s, k_test.shape[0])
    v = val.stop
    y_train = ds["y_train"]
    valid = c.nonnull(log)
    cand = valid[: s.n_candidates or n]
    perms = label_permutations(n, s.null_permutations, s.seed)
    ys = np.concatenate([y_train[None], rescore.permuted_targets(y_train, perms)])
    project = c.projector()
    eps_values = (eps, *s.extra_eps)
    with timed(log, f"label-free projections of {cand.size} features, {v} points"):
        lf_val, *lf_extra = c.label_free_at(
            cand, k_test[val], 0, v, eps_values, topr.PROJECTION_CHUNK, project,
            log, point_block=topr.POINT_BLOCK,
        )  # fmt: skip
    ranked, rob_val = topr.rank_label_sets(lf_val, ys, ds["y_test"][val], task)
    rs = topr.topr_grid(cand.size, s.grid)
    res, clean_sets, robust_sets = _evaluate_label_sets(
        c, s, k_test, ev, ys, ranked, rs, log
    )
    full = {k: float(a.mean()) for k, a in res.items() if k.startswith("full_")}
    log.info("full kernel: %s", full)
    attrs = h5io.provenance(
        **ids,
        task=task,
        eps=eps,
        n_val=v,
        n_eval=ev.stop - v,
        topr=dataclasses.asdict(s),
        arch_spec=s.arch,
        n_null_space=int(n - valid.size),
        **full,
    )
    arrays = {
        "r": rs,
        "candidates": cand,
        "ranked": ranked,
        "val_robustness": rob_val,
        "clean_sets": clean_sets,
        "fgsm_own_sets": robust_sets,
        "labels_eval": ds["labels_test"][ev],
        **{k: a for k, a in res.items()},
        **_topr_extra(c, s, k_test, ev, ys, lf_extra, val, rs, log),
    }
    if s.extra_eps:
        attrs["extra_eps"] = list(s.extra_eps)
    h5io.write(outputs["topr"], arrays, attrs)
    curves = {k: a.mean(-1) for k, a in res.items() if not k.startswith("full_")}
    table = pd.DataFrame({"r": rs, **curves})
    table.insert(0, "arch", ids["arch"])
    table.insert(0, "dataset", ids["dataset"])
    table.to_csv(outputs["csv"], index=False)
