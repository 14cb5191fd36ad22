"""Rule aggregate_notebook_reference: kernel rows + per-feature rows, one table."""

from _common import call, start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.attacks.summary import aggregate_notebook_reference

    call(smk, aggregate_notebook_reference, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
