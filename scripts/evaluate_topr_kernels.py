"""Rule evaluate_topr_kernels: clean/FGSM/PGD accuracy of top-r robust kernels."""

from _common import enable_x64, setup_logging, single_thread_xla, timed


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    single_thread_xla(smk.threads)
    enable_x64(smk.params.x64)
    import math

    import jax
    import numpy as np
    import pandas as pd

    from ntkadv import attacks, data, features, h5io, jacobians, predictor
    from ntkadv.kernels import kernel_fn_from_spec, ntk_gram_blocked

    p, ds = smk.params.topr, data.load_prepared(smk.input.data)
    task, n_cls = ds["attrs"]["task"], len(ds["attrs"]["classes"])
    eigvals, eigvecs = h5io.read(smk.input.eigh, ["eigvals", "eigvecs"]).values()
    k_test = h5io.read(smk.input.gram, ["k_test_train"])["k_test_train"]
    jac = jacobians.load_input_jacobian(smk.input.jacobian)
    n, v, eps = eigvals.size, p["n_val"], smk.params.eps
    stop = min(v + (smk.params.n_eval or 10**9), k_test.shape[0])
    if not 0 < v < stop:
        raise ValueError(f"topr.n_val={v} leaves no evaluation points (m={stop})")
    dtype = np.float64 if smk.params.x64 else np.float32
    x_train, y_train = ds["x_train"].astype(dtype), ds["y_train"]
    kernel_fn = kernel_fn_from_spec(smk.params.arch_spec)

    def rows(x_flat):
        x = x_flat.reshape(-1, *x_train.shape[1:]).astype(dtype)
        return ntk_gram_blocked(
            kernel_fn, x, x_train, smk.params.block, symmetric=False
        )

    val, ev = slice(0, v), slice(v, stop)
    cand = np.arange(min(p["n_candidates"] or n, n))
    with timed(log, f"ranking {cand.size} features on {v} validation points"):
        ranked, rob_val = features.rank_by_validation_robustness(
            eigvals=eigvals,
            eigvecs=eigvecs,
            y_train=y_train,
            candidates=cand,
            k_val_train=k_test[val],
            contract=features.contract_fn(jac, 0, v),
            x_val=jac.x_eval[val],
            y_val=ds["y_test"][val],
            labels_val=ds["labels_test"][val],
            kernel_rows_fn=rows,
            eps=eps,
            task=task,
            num_classes=n_cls,
        )
    rs = features.topr_grid(cand.size, p["grid"])
    coefs = features.topr_coefficients(eigvals, eigvecs, y_train, ranked, rs)
    c_full = predictor.coefficients((eigvals, eigvecs), y_train, math.inf, 1.0)
    grad_fn = jax.jit(attacks.loss_gradient_fn(kernel_fn, task))

    def pgd_fn(c):
        return attacks.pgd(
            kernel_fn,
            jac.x_eval[ev],
            x_train,
            c,
            ds["y_test"][ev],
            task,
            eps,
            p["pgd_rel_step"] * eps,
            p["pgd_steps"],
            grad_fn=grad_fn,
        )

    with timed(log, f"top-r evaluation on {stop - v} points, r = {rs.tolist()}"):
        res = features.evaluate_topr(
            coefs=coefs,
            c_full=c_full,
            k_eval_train=k_test[ev],
            x_eval=jac.x_eval[ev],
            y_eval=ds["y_test"][ev],
            contract=features.contract_fn(jac, v, stop),
            kernel_rows_fn=rows,
            pgd_fn=pgd_fn,
            eps=eps,
            task=task,
        )
    curves = {k: np.asarray(a) for k, a in res.items() if np.ndim(a) == 1}
    full = {k: float(a) for k, a in res.items() if np.ndim(a) == 0}
    log.info("full kernel: %s", full)
    attrs = h5io.provenance(
        dataset=smk.wildcards.dataset,
        arch=smk.wildcards.arch,
        task=task,
        eps=eps,
        n_val=v,
        n_eval=stop - v,
        topr=p,
        arch_spec=smk.params.arch_spec,
        **full,
    )
    arrays = {"r": rs, "ranked": ranked, "candidates": cand, "val_robustness": rob_val}
    h5io.write(smk.output.topr, arrays | curves, attrs)
    table = pd.DataFrame({"r": rs, **curves})
    table.insert(0, "arch", smk.wildcards.arch)
    table.insert(0, "dataset", smk.wildcards.dataset)
    table.to_csv(smk.output.csv, index=False)


if __name__ == "__main__":
    main(snakemake)
