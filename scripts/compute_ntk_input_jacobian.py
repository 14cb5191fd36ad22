"""Rule compute_ntk_input_jacobian: D(x) = ∂Θ(x, X_train)/∂x at every test point."""

from _common import ids, settings, start


def main(smk) -> None:
    log = start(smk, jax=True, x64=smk.params.settings["x64"])
    from ntkadv.kernels.task import KernelSettings, compute_input_jacobian

    s = settings(KernelSettings, smk.params.settings)
    compute_input_jacobian(smk.input.data, smk.output.jacobian, s, ids(smk), log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
