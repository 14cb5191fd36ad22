"""Rule train_dynamics_network: SGD (standard/FGSM/PGD) tracking the eNTK each epoch."""

from _common import setup_logging, single_thread_xla


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    from _dynamics_ckpt import run_with_checkpoints

    single_thread_xla(smk.threads)
    from ntkadv import data, h5io, training

    s, ds = smk.params.settings, data.load_prepared(smk.input.data)
    regime, lin_epoch = smk.params.regime, smk.params.lin_epoch
    subsets = training.prefix_subsets(
        ds, s["n_train"], s["n_eval_train"], s["n_eval_test"]
    )
    n_classes = len(ds["attrs"]["classes"])
    spec = training.spec_from_settings(
        s, regime, s["eps"], s["seed"], n_classes, lin_epoch
    )
    run = training.DynamicsRun(spec, **subsets)
    log.info("spec %s; %d SGD steps/epoch", spec, run.steps_per_epoch)
    attrs = h5io.provenance(
        dataset=smk.wildcards.dataset,
        regime=regime,
        lin_epoch=-1 if lin_epoch is None else lin_epoch,
        spec=spec.to_dict(),
        settings=dict(s),
        kernel_inputs=spec.kernel_inputs,
        kernel_ordering="row a*B+i = (logit a, kernel-batch example i); "
        "= nt eNTK (B,B,k,k).transpose([3,1,2,0]).reshape(kB,kB)",
        n_sgd_train=len(subsets["x_train"]),
        n_eval_train=len(subsets["x_eval_train"]),
        n_eval_test=len(subsets["x_eval_test"]),
        classes=list(ds["attrs"]["classes"]),
    )
    fingerprint = spec.fingerprint(subsets["x_train"], subsets["x_eval_test"])
    run_with_checkpoints(run, smk.output.run, smk.params.ckpt, attrs, log, fingerprint)


if __name__ == "__main__":
    main(snakemake)
