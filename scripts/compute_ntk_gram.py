"""Rule compute_ntk_gram: analytic NTK Gram matrices Θ(X, X) and Θ(X_test, X)."""

from _common import call, start


def main(smk) -> None:
    log = start(smk, jax=True, x64=smk.params.settings["x64"])
    from ntkadv.kernels.task import compute_ntk_gram

    call(smk, compute_ntk_gram, log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
