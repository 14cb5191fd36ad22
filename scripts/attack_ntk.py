"""Rule attack_ntk: FGSM, PGD and first-order attacks on f_t of one NTK, all t, eps."""

from _common import enable_x64, setup_logging, single_thread_xla, timed


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    single_thread_xla(smk.threads)
    enable_x64(smk.params.x64)
    import pandas as pd

    from ntkadv import attacks, h5io, kernels
    from ntkadv.data import load_prepared
    from ntkadv.jacobians import load_input_jacobian

    data = load_prepared(smk.input.data)
    k_test_train = h5io.read(smk.input.gram, ["k_test_train"])["k_test_train"]
    eig = h5io.read(smk.input.eigh, ["eigvals", "eigvecs"])
    spec = kernels.full_spec(smk.params.arch)
    with timed(log, "attack suite"):
        rows, checks, arrays = attacks.attack_kernel_machine(
            kernels.kernel_fn_from_spec(spec),
            data,
            k_test_train,
            (eig["eigvals"], eig["eigvecs"]),
            load_input_jacobian(smk.input.jacobian),
            smk.params.predictor,
            smk.params.attacks,
            float(smk.params.eps),
            spec["family"],
            log=log,
        )
    ids = {"dataset": smk.wildcards.dataset, "arch": smk.wildcards.arch}
    table = pd.DataFrame([{**ids, **row} for row in rows])
    table.to_csv(smk.output.accuracy, index=False)
    pd.DataFrame([{**ids, **row} for row in checks]).to_csv(
        smk.output.checks, index=False
    )
    log.info("accuracies:\n%s", table.to_string())
    attrs = h5io.provenance(
        **ids, arch_spec=spec, predictor=dict(smk.params.predictor), eps=smk.params.eps
    )
    h5io.write(smk.output.adversarial, arrays, {**attrs, "task": data["attrs"]["task"]})


if __name__ == "__main__":
    main(snakemake)
