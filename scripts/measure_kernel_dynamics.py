"""Rule measure_kernel_dynamics: distances, polar dynamics and top-k mass of a run."""

from _common import ids, start


def main(smk) -> None:
    log = start(smk)
    from ntkadv.dynamics.summary import run_measure

    p = smk.params
    run_measure(
        smk.input.run,
        smk.output.measures,
        list(p.mass_top_k),
        p.polar_top_k,
        ids(smk, "dataset", "regime"),
        log,
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
