"""Rule compute_ntk_gram: analytic NTK Gram matrices Θ(X, X) and Θ(X_test, X)."""

from _common import ids, settings, start


def main(smk) -> None:
    log = start(smk, jax=True, x64=smk.params.settings["x64"])
    from ntkadv.kernels.task import KernelSettings, compute_gram

    s = settings(KernelSettings, smk.params.settings)
    compute_gram(smk.input.data, smk.output.gram, s, ids(smk), log)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
