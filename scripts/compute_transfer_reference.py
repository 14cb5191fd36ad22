"""Rule compute_transfer_reference: the NTK side of supp. App. C at every eval epoch."""

from _common import call, start


def main(smk) -> None:
    log = start(smk, jax=True, x64=smk.params.settings["x64"])
    from ntkadv.transfer.task import compute_transfer_reference

    call(smk, compute_transfer_reference, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
