"""Rules train_dynamics_network and train_linearized_network: SGD (standard / FGSM /
PGD, optionally linearised, supp. E.1) tracking the eNTK every epoch, resumable."""

from _common import ids, settings, start


def main(smk) -> None:
    log = start(smk, jax=True)
    from ntkadv.dynamics.task import DynamicsSettings, run_training

    s = settings(DynamicsSettings, smk.params.settings)
    run_training(
        smk.input.data,
        smk.output.run,
        smk.params.ckpt,
        s,
        smk.params.regime,
        smk.params.lin_epoch,
        ids(smk, "dataset"),
        log,
        snapshots=list(smk.params.snapshots),
        source_run=smk.input.get("source"),
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
