"""Rule compute_ntk_gram: analytic NTK Gram matrices Θ(X, X) and Θ(X_test, X)."""

from _common import enable_x64, kernel_cache_attrs, setup_logging, single_thread_xla


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    single_thread_xla(smk.threads)
    enable_x64(smk.params.x64)
    import time

    import jax
    import numpy as np

    from ntkadv import h5io, kernels

    start = time.perf_counter()
    dtype = np.float64 if smk.params.x64 else np.float32
    data = h5io.read(smk.input.data, ["x_train", "x_test"])
    x_train, x_test = data["x_train"].astype(dtype), data["x_test"].astype(dtype)
    spec = kernels.full_spec(smk.params.spec)
    kernel_fn = kernels.kernel_fn_from_spec(spec)
    b = smk.params.block_size
    attrs = kernel_cache_attrs(smk, spec)
    with h5io.atomic_h5(smk.output.gram, attrs) as f:
        for key, x1, x2 in [
            ("k_train_train", x_train, None),
            ("k_test_train", x_test, x_train),
        ]:
            shape, t0 = (len(x1), len(x_train)), time.perf_counter()
            chunks = (min(b, shape[0]), min(b, shape[1]))
            out = f.create_dataset(key, shape, dtype=np.float64, chunks=chunks)
            kernels.ntk_gram_blocked(kernel_fn, x1, x2, b, out=out)
            if not np.all(np.isfinite(out[()])):
                raise FloatingPointError(f"{key} has non-finite entries")
            log.info("%s %s (%s): %.1f s", key, shape, spec, time.perf_counter() - t0)
        f.attrs["wall_time_s"] = time.perf_counter() - start
    stats = jax.devices()[0].memory_stats() or {}
    log.info("peak device memory: %s", stats.get("peak_bytes_in_use", "n/a (CPU)"))


if __name__ == "__main__":
    main(snakemake)
