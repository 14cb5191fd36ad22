"""Stage 2: analytic NTK caches (GPU): Gram matrices and test-point input Jacobians."""


rule compute_ntk_gram:
    """Θ(X_train, X_train) and Θ(X_test, X_train), float64, blocked (supp. Eq. 3, 29)."""
    input:
        data="results/data/{dataset}.h5",
        code=script_sources("compute_ntk_gram"),
    output:
        gram="results/ntk/{dataset}/{arch}/gram.h5",
    log:
        "results/logs/compute_ntk_gram/{dataset}/{arch}.log",
    benchmark:
        "results/benchmarks/compute_ntk_gram/{dataset}/{arch}.tsv"
    conda:
        "../../envs/jax.yaml"
    threads: COMPUTE_THREADS
    resources:
        gpu=1,
        mem_mb=compute_ntk_gram_mem_mb,
        runtime=compute_ntk_gram_runtime_min,
    params:
        settings=kernel_settings,
    script:
        "../../scripts/compute_ntk_gram.py"


rule compute_ntk_input_jacobian:
    """D(x) = ∂Θ(x, X_train)/∂x at every test point (supp. Eq. 9, 26-27): factored
    (FC families); dense families store the inputs only and their consumers
    recompute D (ntkadv.kernels.jacobians.ImplicitJacobian)."""
    input:
        data="results/data/{dataset}.h5",
        code=script_sources("compute_ntk_input_jacobian"),
    output:
        jacobian="results/ntk/{dataset}/{arch}/jacobian.h5",
    log:
        "results/logs/compute_ntk_input_jacobian/{dataset}/{arch}.log",
    benchmark:
        "results/benchmarks/compute_ntk_input_jacobian/{dataset}/{arch}.tsv"
    conda:
        "../../envs/jax.yaml"
    threads: COMPUTE_THREADS
    resources:
        gpu=1,
        mem_mb=compute_ntk_input_jacobian_mem_mb,
        disk_mb=compute_ntk_input_jacobian_disk_mb,
        runtime=kernel_runtime_min,
    params:
        settings=kernel_settings,
    script:
        "../../scripts/compute_ntk_input_jacobian.py"
