"""Rule summarize_dynamics_claims: claims rows for findings 8-13 and a run summary."""

from _common import start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.dynamics.summary import run_claims

    i, p = smk.input, smk.params
    run_claims(
        i.measures,
        i.runs,
        i.linearized,
        dict(smk.output),
        p.polar_top_k,
        log,
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
