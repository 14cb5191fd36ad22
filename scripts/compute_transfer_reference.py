"""Rule compute_transfer_reference: the NTK side of supp. App. C at every eval epoch."""

from _common import enable_x64, setup_logging, single_thread_xla, timed


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    single_thread_xla(smk.threads)
    enable_x64(smk.params.x64)
    from ntkadv import h5io, jacobians, kernels, twolayer
    from ntkadv.data import load_prepared

    p = dict(smk.params.transfer)
    data = load_prepared(smk.input.data)
    task = data["attrs"]["task"]
    n_cached = data["x_train"].shape[0]
    subset = p["n_train"] is not None and p["n_train"] < n_cached
    gram = h5io.read(smk.input.gram, ["k_test_train"] + ["k_train_train"] * subset)
    eig = h5io.read(smk.input.eigh, ["eigvals", "eigvecs"])
    ref = twolayer.ntk_reference(
        gram.get("k_train_train"),
        gram["k_test_train"],
        data["y_train"],
        p["lr"],
        p["n_train"],
        (eig["eigvals"], eig["eigvecs"]),
    )
    x_train = data["x_train"].reshape(n_cached, -1)[: ref.n]
    x_test = data["x_test"].reshape(data["x_test"].shape[0], -1)
    jac = twolayer.restrict_jacobian(
        jacobians.load_input_jacobian(smk.input.jacobian), ref.n
    )
    epochs = twolayer.transfer_epochs(p)
    stability = twolayer.gd_stability(ref.spectrum.eigvals[0], ref.n, p["lr"])
    log.info(
        "n=%d lr=%g: lr*lambda_max/n = %.3f (GD stable < 2)", ref.n, p["lr"], stability
    )
    with timed(log, f"NTK reference at {len(epochs)} epochs"):
        out = twolayer.ntk_transfer_reference(
            ref,
            jac,
            kernels.kernel_fn_from_spec(smk.params.arch),
            x_train,
            x_test,
            data["y_test"],
            task,
            epochs,
            p["eps"],
            align_epoch=p["align_epoch"],
        )
    image = p["image_index"]
    kept = [i for i, e in enumerate(epochs) if e in set(p["image_epochs"])]
    out.update(image=x_test[image], image_epochs=epochs[kept])
    out["grad_image"] = out["loss_grad"][kept, image]
    attrs = h5io.provenance(
        dataset=smk.wildcards.dataset,
        arch=smk.wildcards.arch,
        task=task,
        transfer=p,
        n_train=ref.n,
        gd_stability=stability,
        n_clipped=int(ref.spectrum.n_clipped),
        image_shape=list(data["x_test"].shape[1:]),
        image_label=int(data["labels_test"][image]),
        image_class=int(data["attrs"]["classes"][int(data["labels_test"][image])]),
        source=data["attrs"]["source"],
    )
    h5io.write(smk.output.reference, out, attrs)
    log.info(
        "NTK accuracy clean/own-FGSM at the last epoch: %.3f/%.3f",
        out["acc_clean"][-1],
        out["acc_own"][-1],
    )


if __name__ == "__main__":
    main(snakemake)
