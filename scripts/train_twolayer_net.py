"""Rule train_twolayer_net: full-batch GD of one wide two-layer net vs its NTK."""

from _common import enable_x64, setup_logging, single_thread_xla, timed


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    single_thread_xla(smk.threads)
    enable_x64(smk.params.x64)
    import jax
    import numpy as np

    from ntkadv import h5io, twolayer
    from ntkadv.data import load_prepared

    p = dict(smk.params.transfer)
    width, seed = int(smk.wildcards.width), int(smk.wildcards.seed)
    data = load_prepared(smk.input.data)
    ref = h5io.read(smk.input.reference)
    meta = h5io.read_attrs(smk.input.reference)
    n = int(meta["n_train"])
    x_train = data["x_train"].reshape(data["x_train"].shape[0], -1)[:n]
    x_test = data["x_test"].reshape(data["x_test"].shape[0], -1)
    y_train = data["y_train"][:n]
    key = jax.random.PRNGKey(seed)
    net = twolayer.init_net(
        key, x_train.shape[1], width, y_train.shape[1], p["w_std"], p["dtype"]
    )
    with timed(log, f"{ref['epoch'][-1]} epochs at width {width}") as took:
        out = twolayer.run_transfer(
            net,
            x_train,
            y_train,
            x_test,
            data["y_test"],
            meta["task"],
            p["lr"],
            ref,
            p["eps"],
            p["image_index"],
            ref["image_epochs"],
            log=log.info,
        )
    i = int(
        np.flatnonzero(
            out["epoch"] == twolayer.nearest_epoch(out["epoch"], p["align_epoch"])
        )[0]
    )
    alpha, err_fit, err_one = twolayer.fit_time_factor(
        out["f_test"][i], ref["align_factors"], ref["align_f"]
    )
    log.info(
        "time factor at epoch %d: %.3g (rel. error %.3f; %.3f at 1)",
        out["epoch"][i],
        alpha,
        err_fit,
        err_one,
    )
    attrs = h5io.provenance(
        dataset=smk.wildcards.dataset,
        arch=smk.wildcards.arch,
        width=width,
        seed=seed,
        lr=p["lr"],
        task=meta["task"],
        transfer=p,
        n_train=n,
        gd_stability=meta["gd_stability"],
        align_epoch=int(out["epoch"][i]),
        time_factor=alpha,
        time_factor_error=err_fit,
        time_factor_error_at_1=err_one,
        train_seconds=took["seconds"],
    )
    h5io.write(smk.output.run, out, attrs)


if __name__ == "__main__":
    main(snakemake)
