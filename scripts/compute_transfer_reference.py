"""Rule compute_transfer_reference: the NTK side of supp. App. C at every eval epoch."""

from _common import ids, settings, start


def main(smk) -> None:
    log = start(smk, jax=True, x64=smk.params.settings["x64"])
    from ntkadv.transfer.task import ReferenceSettings, run_reference

    s = settings(ReferenceSettings, smk.params.settings)
    run_reference(
        dict(smk.input), smk.output.reference, s, dict(smk.params.arch), ids(smk), log
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
