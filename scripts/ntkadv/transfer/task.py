"""Rules compute_transfer_reference and train_twolayer_net (supp. App. C).

Each task has the entry signature of every rule (scripts/_common.call):
``(inputs, outputs, settings, ids, log)``.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np

from ntkadv import h5io
from ntkadv.timing import timed


@dataclasses.dataclass(frozen=True)
class ReferenceSettings:
    """Params of rule compute_transfer_reference (one dataset).

    Attributes:
        arch: the architecture's config entry (the kernel of the reference).
        n_train: first n training points used (None = all cached).
        lr: GD learning rate of this dataset (transfer.lr or its override).
        eps: the dataset's ℓ∞ budget.
        epochs: GD epochs; n_eval: log-spaced evaluation epochs.
        align_epoch: epoch of the hand-alignment diagnostic.
        image_index, image_epochs: test image (None: this dataset is not
            transfer.image_dataset) and epochs of the gradient images.
        seed: config seed of the random-sign control (`nulls.random_signs`).
        x64: float64 kernels.
        solver: "dense" (eigh of the Gram) or "iterative" (matrix-free: block
            Lanczos on kernel blocks recomputed from the inputs,
            `ntkadv.spectra.iterative.KernelMatvec`, and Θ(x, X) c of the attacked
            points block by block; no Gram is read. For the 60K MNIST of supp.
            App. C, whose 28.8 GB Gram cannot be held or eigendecomposed).
        solver_tol: tolerance of the iterative solver (relative change of c_t).
    """

    arch: dict[str, Any]
    n_train: int | None
    lr: float
    eps: float
    seed: int
    epochs: int
    n_eval: int
    align_epoch: int
    image_index: int | None
    image_epochs: tuple[int, ...]
    x64: bool
    solver: str = "dense"
    solver_tol: float = 1e-6

    def eval_epochs(self) -> np.ndarray:
        """The evaluation epochs (`ntkadv.transfer.experiment.transfer_epochs`)."""
        from ntkadv.transfer.experiment import transfer_epochs

        return transfer_epochs(
            self.epochs, self.n_eval, self.image_epochs, self.align_epoch
        )

    def provenance(self) -> dict[str, Any]:
        """The settings recorded as the reference file's ``transfer`` attribute
        (the architecture is recorded by the kernel caches it reads)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "arch"}


@dataclasses.dataclass(frozen=True)
class NetSettings:
    """Params of rule train_twolayer_net (the epochs come from the reference).

    Attributes:
        lr, eps, align_epoch, image_index, x64: as `ReferenceSettings`.
        w_std: std of the first layer at initialisation.
        dtype: parameter dtype of the nets.
    """

    lr: float
    eps: float
    w_std: float
    dtype: str
    align_epoch: int
    image_index: int | None
    x64: bool


def compute_transfer_reference(
    inputs: dict[str, str],
    outputs: dict[str, str],
    settings: ReferenceSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule compute_transfer_reference: f_t, its FGSM gradient and accuracies.

    Args:
        inputs: data, jacobian and (dense solver) gram and eigh.
        outputs: ``reference``: ntk_reference.h5 (`reference.ntk_transfer_reference`).
        settings: the rule's settings; ids: {dataset, arch}; log: the job's logger.
    """
    from ntkadv.claims.nulls import random_signs
    from ntkadv.data import load_prepared
    from ntkadv.kernels.analytic import kernel_fn_from_spec
    from ntkadv.kernels.jacobians import load_input_jacobian
    from ntkadv.transfer import checks, reference

    s = settings
    data = load_prepared(inputs["data"])
    task = data["attrs"]["task"]
    n_cached = data["x_train"].shape[0]
    epochs = s.eval_epochs()
    ref = _predictor(inputs, data, s, epochs, log)
    x_train = data["x_train"].reshape(n_cached, -1)[: ref.n]
    x_test = data["x_test"].reshape(data["x_test"].shape[0], -1)
    stability = _check_reference_stability(ref, s, ids, log)
    jac = load_input_jacobian(inputs["jacobian"]).train_subset(ref.n)
    with timed(log, f"NTK reference at {len(epochs)} epochs"):
        out = reference.ntk_transfer_reference(
            ref,
            jac,
            kernel_fn_from_spec(s.arch),
            x_train,
            x_test,
            data["y_test"],
            task,
            epochs,
            s.eps,
            align_epoch=s.align_epoch,
            random_signs=random_signs(x_test.shape, s.seed),
            block_size=_matrix_free_block(s),
        )
    checks.check_finite(
        {"f_t": out["f"], "NTK loss gradients": out["loss_grad"]},
        s.lr,
        ids["dataset"],
        checks.where(ids["dataset"]),
    )
    image_attrs = _keep_images(out, epochs, s, data, x_test)
    attrs = h5io.provenance(
        **ids,
        task=task,
        transfer=s.provenance(),
        n_train=ref.n,
        gd_stability=stability,
        lambda_max=ref.eigval_max,
        n_clipped=ref.n_clipped,
        image_shape=list(data["x_test"].shape[1:]),
        source=data["attrs"]["source"],
        **image_attrs,
    )
    h5io.write(outputs["reference"], out, attrs)
    log.info(
        "NTK accuracy clean/own-FGSM/random-sign at the last epoch: %.3f/%.3f/%.3f",
        out["acc_clean"][-1],
        out["acc_own"][-1],
        out["acc_random"][-1],
    )


def _predictor(
    inputs: dict[str, str],
    data: dict[str, Any],
    s: ReferenceSettings,
    epochs: np.ndarray,
    log: logging.Logger,
):
    """The NTK predictor f_t (`reference.ntk_reference`): the dense solver from the
    Gram and its eigendecomposition, or the matrix-free one
    (`_matrix_free_reference`)."""
    from ntkadv.transfer import reference

    if s.solver == "iterative":
        return _matrix_free_reference(data, s, epochs, log)
    subset = s.n_train is not None and s.n_train < data["x_train"].shape[0]
    gram = h5io.read(inputs["gram"], ["k_test_train"] + ["k_train_train"] * subset)
    eig = h5io.read(inputs["eigh"], ["eigvals", "eigvecs"])
    return reference.ntk_reference(
        gram.get("k_train_train"),
        gram["k_test_train"],
        data["y_train"],
        s.lr,
        s.n_train,
        (eig["eigvals"], eig["eigvecs"]),
    )


def _matrix_free_block(s: ReferenceSettings) -> int | None:
    """Kernel block of the matrix-free attacks (`ntk_transfer_reference`), None for
    the dense solver (its path is unchanged)."""
    from ntkadv.spectra.iterative import BLOCK_SIZE

    return BLOCK_SIZE if s.solver == "iterative" else None


def _check_reference_stability(
    ref, s: ReferenceSettings, ids: dict[str, str], log: logging.Logger
) -> float:
    """lr·λ_max/n of full-batch GD on the reference's training set, logged and
    checked (`checks.check_stability`, every width and seed of the dataset)."""
    from ntkadv.transfer import checks, net

    lam_max = ref.eigval_max
    stability = net.gd_stability(lam_max, ref.n, s.lr)
    log.info(
        "n=%d lr=%g: lr*lambda_max/n = %.3f (GD stable < 2)", ref.n, s.lr, stability
    )
    checks.check_stability(
        stability,
        lam_max,
        ref.n,
        s.lr,
        ids["dataset"],
        f"{checks.where(ids['dataset'])} (every width and seed), n_train {ref.n}",
    )
    return stability


def _keep_images(
    out: dict[str, Any],
    epochs: np.ndarray,
    s: ReferenceSettings,
    data: dict[str, Any],
    x_test: np.ndarray,
) -> dict[str, int]:
    """Add the image epochs (and, on the image dataset, the test image and its NTK
    loss gradients at those epochs) to `out`; the image's label attrs (or none)."""
    kept = [i for i, e in enumerate(epochs) if e in set(s.image_epochs)]
    out["image_epochs"] = epochs[kept]
    if s.image_index is None:
        return {}
    image = s.image_index
    out.update(image=x_test[image], grad_image=out["loss_grad"][kept, image])
    label = int(data["labels_test"][image])
    return dict(image_label=label, image_class=int(data["attrs"]["classes"][label]))


def _matrix_free_reference(
    data: dict[str, Any],
    s: ReferenceSettings,
    epochs: np.ndarray,
    log: logging.Logger,
):
    """The NTK reference without any n x n array (supp. App. C at n = 60,000).

    Θ(X, X) V is recomputed block by block from the training inputs on every
    matvec (`iterative.KernelMatvec`, nothing on disk) and Θ(X_test, X) (m, n) is
    computed here, both in the kernel stage's dtype (float64 with x64). The Krylov
    basis must resolve f_t at every evaluation epoch and over the range of the
    alignment diagnostic (factors 0.1-10 of the alignment epoch's time).
    """
    from ntkadv.kernels.analytic import kernel_fn_from_spec
    from ntkadv.kernels.blocked import ntk_gram_blocked
    from ntkadv.spectra import iterative
    from ntkadv.transfer import reference
    from ntkadv.transfer.net import ntk_time

    n_all = data["x_train"].shape[0]
    n = n_all if s.n_train is None else min(s.n_train, n_all)
    dtype = np.float64 if s.x64 else np.float32
    x_train = data["x_train"][:n].reshape(n, -1).astype(dtype)
    x_test = data["x_test"].reshape(data["x_test"].shape[0], -1).astype(dtype)
    kernel_fn = kernel_fn_from_spec(s.arch)
    times = [ntk_time(int(e), n) for e in epochs] + [
        a * ntk_time(s.align_epoch, n) for a in (0.1, 10.0)
    ]
    block = iterative.BLOCK_SIZE
    with timed(log, f"Θ(X_test, X) ({x_test.shape[0]} x {n})"):
        k_test = ntk_gram_blocked(kernel_fn, x_test, x_train, block, symmetric=False)
    matvec = iterative.KernelMatvec(kernel_fn, x_train, block, log=log)
    with timed(log, f"matrix-free NTK predictor (n={n}, tol={s.solver_tol})"):
        ref = reference.ntk_reference(
            None,
            k_test,
            data["y_train"][:n],
            s.lr,
            solver="iterative",
            times=times,
            tol=s.solver_tol,
            matvec=matvec,
        )
    info = ref.solver.krylov.info
    log.info(
        "block Lanczos: %d kernel matvecs (blocks of %d), basis of %d vectors, "
        "largest relative change of c_t at the last check %.2e (tol %g)",
        info.iterations,
        matvec.block_size,
        ref.solver.krylov.basis.shape[1],
        float(np.max(info.residuals)),
        s.solver_tol,
    )
    return ref


def train_twolayer_net(
    inputs: dict[str, str],
    outputs: dict[str, str],
    settings: NetSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule train_twolayer_net: full-batch GD of one net vs the NTK reference.

    Args:
        inputs: data and ``reference`` (rule compute_transfer_reference).
        outputs: ``run``: the run's arrays (`experiment.run_transfer`) and attrs.
        settings: the rule's settings; ids: {dataset, arch, width, seed};
            log: the job's logger.
    """
    import jax

    from ntkadv.data import load_prepared
    from ntkadv.transfer import checks, experiment, net

    s, width, seed = settings, int(ids["width"]), int(ids["seed"])
    data = load_prepared(inputs["data"])
    ref = h5io.read(inputs["reference"])
    meta = h5io.read_attrs(inputs["reference"])
    n = int(meta["n_train"])
    dataset = ids["dataset"]
    at = checks.where(dataset, width, seed)
    checks.check_stability(
        float(meta["gd_stability"]),
        float(meta["lambda_max"]),
        n,
        s.lr,
        dataset,
        f"{at}, epoch 0",
    )
    x_train = data["x_train"].reshape(data["x_train"].shape[0], -1)[:n]
    x_test = data["x_test"].reshape(data["x_test"].shape[0], -1)
    y_train = data["y_train"][:n]
    key = jax.random.PRNGKey(seed)
    model = net.init_net(
        key, x_train.shape[1], width, y_train.shape[1], s.w_std, s.dtype
    )
    with timed(log, f"{ref['epoch'][-1]} epochs at width {width}") as took:
        out = experiment.run_transfer(
            model,
            x_train,
            y_train,
            x_test,
            data["y_test"],
            meta["task"],
            s.lr,
            ref,
            s.eps,
            s.image_index,
            ref["image_epochs"],
            log=log.info,
            dataset=dataset,
            at=at,
        )
    factor = _time_factor(out, ref, s.align_epoch, log)
    attrs = h5io.provenance(
        dataset=dataset,
        arch=ids["arch"],
        width=width,
        seed=seed,
        lr=s.lr,
        task=meta["task"],
        transfer=dataclasses.asdict(s),
        n_train=n,
        gd_stability=meta["gd_stability"],
        **factor,
        train_seconds=took["seconds"],
    )
    h5io.write(outputs["run"], out, attrs)


def _time_factor(
    out: dict[str, np.ndarray],
    ref: dict[str, np.ndarray],
    align_epoch: int,
    log: logging.Logger,
) -> dict[str, Any]:
    """The time factor α of the net at the evaluation epoch nearest `align_epoch`
    (`reference.fit_time_factor`), logged; as the run's attrs."""
    from ntkadv.transfer import experiment, reference

    i = int(
        np.flatnonzero(
            out["epoch"] == experiment.nearest_epoch(out["epoch"], align_epoch)
        )[0]
    )
    alpha, err_fit, err_one = reference.fit_time_factor(
        out["f_test"][i], ref["align_factors"], ref["align_f"]
    )
    log.info(
        "time factor at epoch %d: %.3g (rel. error %.3f; %.3f at 1)",
        out["epoch"][i],
        alpha,
        err_fit,
        err_one,
    )
    return dict(
        align_epoch=int(out["epoch"][i]),
        time_factor=alpha,
        time_factor_error=err_fit,
        time_factor_error_at_1=err_one,
    )
