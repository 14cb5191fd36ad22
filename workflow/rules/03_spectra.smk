"""Stage 3: eigendecomposition of the NTK Gram matrix (shared by attacks and features)."""


rule eigendecompose_gram:
    """Θ(X, X) = V diag(λ) Vᵀ in float64, descending; tiny/negative λ clipped."""
    input:
        gram="results/ntk/{dataset}/{arch}/gram.h5",
        code=script_sources("eigendecompose_gram"),
    output:
        eigh="results/spectra/{dataset}/{arch}/eigh.h5",
    log:
        "results/logs/eigendecompose_gram/{dataset}/{arch}.log",
    benchmark:
        "results/benchmarks/eigendecompose_gram/{dataset}/{arch}.tsv"
    conda:
        "../../envs/cpu.yaml"
    threads: 1
    resources:
        mem_mb=eigendecompose_gram_mem_mb,
        runtime=eigendecompose_gram_runtime_min,
    script:
        "../../scripts/eigendecompose_gram.py"
