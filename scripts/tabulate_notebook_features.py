""""""

from _common import call, start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.features.summary import tabulate_notebook_features

    call(smk, tabulate_notebook_features, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
