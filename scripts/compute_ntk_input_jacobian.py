"""Rule compute_ntk_input_jacobian: D(x) = ∂Θ(x, X_train)/∂x at every test point."""

from _common import (
    enable_x64,
    kernel_cache_attrs,
    setup_logging,
    single_thread_xla,
    timed,
)


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    single_thread_xla(smk.threads)
    enable_x64(smk.params.x64)
    import jax
    import numpy as np

    from ntkadv import h5io, jacobians, kernels

    dtype = np.float64 if smk.params.x64 else np.float32
    data = h5io.read(smk.input.data, ["x_train", "x_test"])
    x_train, x_test = data["x_train"].astype(dtype), data["x_test"].astype(dtype)
    spec = kernels.full_spec(smk.params.spec)
    form = jacobians.jacobian_form(spec["family"])
    attrs = kernel_cache_attrs(smk, spec)
    what = f"{form} Jacobian of {len(x_test)} test x {len(x_train)} train points"
    with timed(log, what):
        jacobians.write_input_jacobian(
            smk.output.jacobian,
            kernels.kernel_fn_from_spec(spec),
            form,
            x_test,
            x_train,
            smk.params.block_size,
            attrs,
        )
    stats = jax.devices()[0].memory_stats() or {}
    log.info("peak device memory: %s", stats.get("peak_bytes_in_use", "n/a (CPU)"))


if __name__ == "__main__":
    main(snakemake)
