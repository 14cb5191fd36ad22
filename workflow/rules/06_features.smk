"""Stage 6: NTK eigenfeatures, robust vs useful (paper Sec. 4, supp. App. D)."""


localrules:
    measure_feature_consistency,
    plot_feature_ru,
    plot_feature_gradients,
    plot_feature_consistency,
    plot_topr_kernels,
    tabulate_notebook_features,
    summarize_feature_claims,


# A kernel whose score_features request exceeds resources.max_job_min (config/
# paper.yaml's MNIST CONV2 kernel: docs/paper_scale.md) is scored in shards of
# contiguous test-point ranges (score_features_shard) whose merge
# (merge_feature_shards) writes score_features's outputs; the merge wins.
ruleorder: merge_feature_shards > score_features


rule score_features:
    """Label-free projections p_i = Θ(x, X) v_i of the first K eigenfeatures (+ image
    indices) at the clean and FGSM candidate points (the ± trick), true-label
    usefulness / robustness, gradient images, Prop. 1 check."""
    input:
        data="results/data/{dataset}.h5",
        gram="results/ntk/{dataset}/{arch}/gram.h5",
        jacobian="results/ntk/{dataset}/{arch}/jacobian.h5",
        eigh="results/spectra/{dataset}/{arch}/eigh.h5",
        code=script_sources("score_features"),
    output:
        scores="results/features/{dataset}/{arch}/scores.h5",
        csv="results/features/{dataset}/{arch}/scores.csv",
    log:
        "results/logs/score_features/{dataset}/{arch}.log",
    benchmark:
        "results/benchmarks/score_features/{dataset}/{arch}.tsv"
    conda:
        "../../envs/jax.yaml"
    threads: COMPUTE_THREADS
    resources:
        mem_mb=score_features_mem_mb,
        runtime=score_features_runtime_min,
    params:
        settings=score_features_settings,
    script:
        "../../scripts/score_features.py"


rule score_features_shard:
    """score_features's label-free projections at the test points of one shard (a
    contiguous range); the first shard also the gradient images, the Prop. 1
    check and the scored features' eigenvectors."""
    input:
        data="results/data/{dataset}.h5",
        gram="results/ntk/{dataset}/{arch}/gram.h5",
        jacobian="results/ntk/{dataset}/{arch}/jacobian.h5",
        eigh="results/spectra/{dataset}/{arch}/eigh.h5",
        code=script_sources("score_features_shard"),
    output:
        part="results/features/{dataset}/{arch}/shards/{shard}.h5",
    log:
        "results/logs/score_features_shard/{dataset}/{arch}/{shard}.log",
    benchmark:
        "results/benchmarks/score_features_shard/{dataset}/{arch}/{shard}.tsv"
    wildcard_constraints:
        dataset=kernel_constraint(sharded_feature_kernels()),
        shard=r"\d+",
    conda:
        "../../envs/jax.yaml"
    threads: COMPUTE_THREADS
    resources:
        mem_mb=score_features_shard_mem_mb,
        runtime=score_features_shard_runtime_min,
    params:
        settings=score_features_shard_settings,
    script:
        "../../scripts/score_features_shard.py"


rule merge_feature_shards:
    """score_features's outputs from its shards, joined in test-point order: the
    true-label scores recomputed from the per-point projections."""
    input:
        parts=get_feature_shards,
        data="results/data/{dataset}.h5",
        eigh="results/spectra/{dataset}/{arch}/eigh.h5",
        code=script_sources("merge_feature_shards"),
    output:
        scores="results/features/{dataset}/{arch}/scores.h5",
        csv="results/features/{dataset}/{arch}/scores.csv",
    log:
        "results/logs/merge_feature_shards/{dataset}/{arch}.log",
    benchmark:
        "results/benchmarks/merge_feature_shards/{dataset}/{arch}.tsv"
    wildcard_constraints:
        dataset=kernel_constraint(sharded_feature_kernels()),
    conda:
        "../../envs/jax.yaml"
    threads: 1
    resources:
        mem_mb=merge_feature_shards_mem_mb,
        runtime=30,
    params:
        settings=score_features_settings,
    script:
        "../../scripts/merge_feature_shards.py"


rule evaluate_topr_kernels:
    """supp. D.3: rank features on a validation split (true and permuted training
    labels), then clean / FGSM / PGD10 accuracy of f'_r = Θ(x, X) Θ'_r⁺ Y (transfer
    and own attacks) over a grid of r; own FGSM for every label set. Not split
    above resources.max_job_min: its two per-point phases are separated by the
    global ranking (docs/paper_scale.md)."""
    input:
        data="results/data/{dataset}.h5",
        gram="results/ntk/{dataset}/{arch}/gram.h5",
        jacobian="results/ntk/{dataset}/{arch}/jacobian.h5",
        eigh="results/spectra/{dataset}/{arch}/eigh.h5",
        code=script_sources("evaluate_topr_kernels"),
    output:
        topr="results/features/{dataset}/{arch}/topr.h5",
        csv="results/features/{dataset}/{arch}/topr.csv",
    log:
        "results/logs/evaluate_topr_kernels/{dataset}/{arch}.log",
    benchmark:
        "results/benchmarks/evaluate_topr_kernels/{dataset}/{arch}.tsv"
    conda:
        "../../envs/jax.yaml"
    threads: COMPUTE_THREADS
    resources:
        mem_mb=evaluate_topr_kernels_mem_mb,
        runtime=evaluate_topr_kernels_runtime_min,
    params:
        settings=topr_settings,
    script:
        "../../scripts/evaluate_topr_kernels.py"


rule measure_feature_consistency:
    """Finding 3: Spearman of robustness / usefulness vectors (true and permuted
    training labels) and top eigenspace overlap between every pair of kernels."""
    input:
        scores=get_feature_scores,
        eigh=get_feature_spectra,
        code=script_sources("measure_feature_consistency"),
    output:
        csv="results/tables/features_consistency_{dataset}.csv",
    log:
        "results/logs/measure_feature_consistency/{dataset}.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        settings=consistency_settings,
    script:
        "../../scripts/measure_feature_consistency.py"


rule plot_feature_ru:
    """supp-Fig2 (mnist), supp-Fig3 (cifar2) and main-Fig2 (selection 'main':
    FC2/CONV2): R-U scatters of the first K features."""
    input:
        scores=get_feature_ru_scores,
        code=script_sources("plot_feature_ru"),
    output:
        png=report(
            "results/figures/features_ru_{selection}.png",
            caption="../report/features_ru.rst",
            category="Sec. 4: NTK features",
        ),
    log:
        "results/logs/plot_feature_ru/{selection}.log",
    wildcard_constraints:
        selection="|".join(["main", *config["datasets"]]),
    conda:
        "../../envs/cpu.yaml"
    params:
        settings=feature_ru_settings,
    script:
        "../../scripts/plot_feature_ru.py"


rule plot_feature_gradients:
    """main-Fig3: min-max normalised loss-gradient images of single features
    (notebook indices 0-5, 10, 25, 1500, 1987, 1988, 1998, rescaled to n_train)."""
    input:
        scores=get_feature_image_scores,
        data="results/data/{dataset}.h5",
        code=script_sources("plot_feature_gradients"),
    output:
        png=report(
            "results/figures/features_gradients_{dataset}.png",
            caption="../report/features_gradients.rst",
            category="Sec. 4: NTK features",
        ),
    log:
        "results/logs/plot_feature_gradients/{dataset}.log",
    conda:
        "../../envs/cpu.yaml"
    script:
        "../../scripts/plot_feature_gradients.py"


rule plot_feature_consistency:
    """Finding 3 / supp. D.2: cross-architecture consistency heatmaps."""
    input:
        csv="results/tables/features_consistency_{dataset}.csv",
        code=script_sources("plot_feature_consistency"),
    output:
        png=report(
            "results/figures/features_consistency_{dataset}.png",
            caption="../report/features_consistency.rst",
            category="Sec. 4: NTK features",
        ),
    log:
        "results/logs/plot_feature_consistency/{dataset}.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        settings=canonical({"top": config["features"]["consistency_top"]}),
    script:
        "../../scripts/plot_feature_consistency.py"


rule plot_topr_kernels:
    """supp-Fig4 (mnist), supp-Fig5 (cifar2): accuracy of top-r robust kernels."""
    input:
        topr=get_topr_result,
        code=script_sources("plot_topr_kernels"),
    output:
        png=report(
            "results/figures/features_topr_{dataset}.png",
            caption="../report/features_topr.rst",
            category="Sec. 4: NTK features",
        ),
    log:
        "results/logs/plot_topr_kernels/{dataset}.log",
    conda:
        "../../envs/cpu.yaml"
    script:
        "../../scripts/plot_topr_kernels.py"


rule tabulate_notebook_features:
    """nb-ref: per-feature per-class / clean / FGSM accuracy of the notebook's
    eigen-indices (rescaled when n_train != 2000)."""
    input:
        csv=get_notebook_feature_scores,
        code=script_sources("tabulate_notebook_features"),
    output:
        csv="results/tables/notebook_reference_features.csv",
    log:
        "results/logs/tabulate_notebook_features/tabulate_notebook_features.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        settings=notebook_feature_settings,
    script:
        "../../scripts/tabulate_notebook_features.py"


rule summarize_feature_claims:
    """Findings 1, 2, 3, 7 and 14 (docs/findings.md): measured vs same-run controls
    (training-label permutations, shuffled eigen-index order, Haar-random
    eigenbases), effect ± SE, verdict (ntkadv.claims.core)."""
    input:
        scores=get_all_feature_scores,
        consistency=get_feature_consistency_tables,
        topr=get_all_topr_results,
        code=script_sources("summarize_feature_claims"),
    output:
        csv="results/tables/claims/features.csv",
    log:
        "results/logs/summarize_feature_claims/summarize_feature_claims.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        settings=feature_claim_settings(),
    script:
        "../../scripts/summarize_feature_claims.py"
