"""Rule compute_ntk_input_jacobian: D(x) = ∂Θ(x, X_train)/∂x at every test point."""

from _common import call, start


def main(smk) -> None:
    log = start(smk, jax=True, x64=smk.params.settings["x64"])
    from ntkadv.kernels.task import compute_ntk_input_jacobian

    call(smk, compute_ntk_input_jacobian, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
