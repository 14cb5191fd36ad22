"""Rule score_features: usefulness, FGSM robustness, gradient images of features."""

from _common import enable_x64, setup_logging, single_thread_xla, timed


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    single_thread_xla(smk.threads)
    enable_x64(smk.params.x64)
    import numpy as np

    from ntkadv import data, features, h5io, jacobians
    from ntkadv.kernels import kernel_fn_from_spec, ntk_gram_blocked

    p, ds = smk.params.features, data.load_prepared(smk.input.data)
    task, classes = ds["attrs"]["task"], list(ds["attrs"]["classes"])
    gram = h5io.read(smk.input.gram)
    eigvals, eigvecs = h5io.read(smk.input.eigh, ["eigvals", "eigvecs"]).values()
    n, m = eigvals.size, min(smk.params.n_eval or 10**9, ds["x_test"].shape[0])
    dtype = np.float64 if smk.params.x64 else np.float32
    x_train = ds["x_train"].astype(dtype)
    img_idx = features.scale_feature_indices(
        p["image_indices"], n, p["image_reference_n"]
    )
    indices = np.union1d(np.arange(min(p["top_k"], n)), img_idx)
    kernel_fn = kernel_fn_from_spec(smk.params.arch_spec)

    def rows(x_flat):
        x = x_flat.reshape(-1, *x_train.shape[1:]).astype(dtype)
        return ntk_gram_blocked(
            kernel_fn, x, x_train, smk.params.block, symmetric=False
        )

    jac = jacobians.load_input_jacobian(smk.input.jacobian)
    k_eval = gram["k_test_train"][:m]
    with timed(log, f"one contraction for {indices.size} features, {m} points"):
        grad_p = features.contract_fn(jac, 0, m)(eigvecs[:, indices])
    common = {"eigvals": eigvals, "eigvecs": eigvecs, "y_train": ds["y_train"]}
    with timed(log, f"FGSM robustness ({indices.size}x{m} perturbed kernel rows)"):
        scores = features.score_features(
            **common,
            indices=indices,
            k_eval_train=k_eval,
            grad_p=grad_p,
            x_eval=jac.x_eval[:m],
            y_eval=ds["y_test"][:m],
            labels_eval=ds["labels_test"][:m],
            kernel_rows_fn=rows,
            eps=smk.params.eps,
            task=task,
            num_classes=len(classes),
            chunk=p["chunk"],
        )
    t = p["image_test_index"]
    grads = features.gradient_image_stack(
        **common,
        indices=img_idx,
        k_point_train=k_eval[t : t + 1],
        grad_p_point=grad_p[t : t + 1][:, :, np.searchsorted(indices, img_idx)],
        y_point=ds["y_test"][t : t + 1],
        task=task,
    )
    prop1 = {}
    if task == "binary":
        q = min(p["prop1_points"], m)
        prop1 = features.proposition1_check(
            **common,
            gram=gram["k_train_train"],
            k_eval_train=k_eval[:q],
            y_eval=ds["y_test"][:q],
            contract=features.contract_fn(jac, 0, q),
        )
        log.info("Proposition 1 check: %s", prop1)
    arrays = {f: getattr(scores, f) for f in scores.__dataclass_fields__}
    arrays |= {
        "eigvals": eigvals[indices],
        "image_indices": img_idx,
        "gradients": grads,
    }
    attrs = h5io.provenance(
        dataset=smk.wildcards.dataset,
        arch=smk.wildcards.arch,
        task=task,
        classes=classes,
        n_train=n,
        n_eval=m,
        eps=smk.params.eps,
        features=p,
        arch_spec=smk.params.arch_spec,
        image_test_index=t,
        image_shape=list(x_train.shape[1:]),
        prop1=prop1,
    )
    h5io.write(smk.output.scores, arrays, attrs)
    table = features.scores_frame(scores, eigvals, classes)
    table.insert(0, "arch", smk.wildcards.arch)
    table.insert(0, "dataset", smk.wildcards.dataset)
    table.to_csv(smk.output.csv, index=False)


if __name__ == "__main__":
    main(snakemake)
