"""Stage 4: training-free NTK adversarial examples (paper Sec. 3, supp. App. B)."""


localrules:
    aggregate_attack_tables,
    plot_robustness_vs_time,
    plot_accuracy_vs_eps,
    plot_adversarial_examples,
    summarize_attack_claims,
    tabulate_notebook_kernel,
    aggregate_notebook_reference,


# A kernel whose attack_ntk request exceeds resources.max_job_min (paper-scale CONV
# kernels: docs/paper_scale.md) is attacked in shards of contiguous evaluation-point
# ranges (attack_ntk_shard) whose merge (merge_attack_shards) writes attack_ntk's
# outputs; for such a kernel both rules match those outputs and the merge wins.
ruleorder: merge_attack_shards > attack_ntk


rule attack_ntk:
    """All attacks on f_t of one kernel: FGSM, PGD, first-order, every t and eps;
    permuted-label machines and a random-sign perturbation as same-run nulls.
    A kernel whose request exceeds resources.max_job_min runs as shards instead
    (attack_ntk_shard, merge_attack_shards)."""
    input:
        data="results/data/{dataset}.h5",
        gram="results/ntk/{dataset}/{arch}/gram.h5",
        jacobian="results/ntk/{dataset}/{arch}/jacobian.h5",
        eigh="results/spectra/{dataset}/{arch}/eigh.h5",
        code=script_sources("attack_ntk"),
    output:
        adversarial="results/attacks/{dataset}/{arch}/adversarial.h5",
        pointwise="results/attacks/{dataset}/{arch}/pointwise.h5",
        accuracy="results/attacks/{dataset}/{arch}/accuracy.csv",
        checks="results/attacks/{dataset}/{arch}/gradient_check.csv",
    log:
        "results/logs/attack_ntk/{dataset}/{arch}.log",
    benchmark:
        "results/benchmarks/attack_ntk/{dataset}/{arch}.tsv"
    conda:
        "../../envs/jax.yaml"
    threads: COMPUTE_THREADS
    resources:
        gpu=1,
        mem_mb=attack_ntk_mem_mb,
        runtime=attack_ntk_runtime_min,
    params:
        settings=attack_ntk_settings,
    script:
        "../../scripts/attack_ntk.py"


rule attack_ntk_shard:
    """attack_ntk at the evaluation points of one shard (a contiguous range, ntkadv.
    sizing.shard_ranges): per-point correctness of every attack, the true-label
    attacked inputs and predictions; the first shard also runs the gradient checks."""
    input:
        data="results/data/{dataset}.h5",
        gram="results/ntk/{dataset}/{arch}/gram.h5",
        jacobian="results/ntk/{dataset}/{arch}/jacobian.h5",
        eigh="results/spectra/{dataset}/{arch}/eigh.h5",
        code=script_sources("attack_ntk_shard"),
    output:
        part="results/attacks/{dataset}/{arch}/shards/{shard}.h5",
    log:
        "results/logs/attack_ntk_shard/{dataset}/{arch}/{shard}.log",
    benchmark:
        "results/benchmarks/attack_ntk_shard/{dataset}/{arch}/{shard}.tsv"
    wildcard_constraints:
        dataset=kernel_constraint(sharded_attack_kernels()),
        shard=r"\d+",
    conda:
        "../../envs/jax.yaml"
    threads: COMPUTE_THREADS
    resources:
        gpu=1,
        mem_mb=attack_ntk_shard_mem_mb,
        runtime=attack_ntk_shard_runtime_min,
    params:
        settings=attack_ntk_shard_settings,
    script:
        "../../scripts/attack_ntk_shard.py"


rule merge_attack_shards:
    """attack_ntk's four outputs from its shards, joined in point order: accuracies
    recomputed from the per-point results (the same files and values as one job)."""
    input:
        parts=get_attack_shards,
        code=script_sources("merge_attack_shards"),
    output:
        adversarial="results/attacks/{dataset}/{arch}/adversarial.h5",
        pointwise="results/attacks/{dataset}/{arch}/pointwise.h5",
        accuracy="results/attacks/{dataset}/{arch}/accuracy.csv",
        checks="results/attacks/{dataset}/{arch}/gradient_check.csv",
    log:
        "results/logs/merge_attack_shards/{dataset}/{arch}.log",
    benchmark:
        "results/benchmarks/merge_attack_shards/{dataset}/{arch}.tsv"
    wildcard_constraints:
        dataset=kernel_constraint(sharded_attack_kernels()),
    conda:
        "../../envs/jax.yaml"
    threads: 1
    resources:
        mem_mb=merge_attack_shards_mem_mb,
        runtime=30,
    params:
        settings=attack_ntk_settings,
    script:
        "../../scripts/merge_attack_shards.py"


rule aggregate_attack_tables:
    """One accuracy table and one gradient-check table over every attacked kernel."""
    input:
        accuracy=get_attack_tables("accuracy.csv"),
        checks=get_attack_tables("gradient_check.csv"),
        code=script_sources("aggregate_attack_tables"),
    output:
        accuracy="results/tables/attacks_accuracy.csv",
        checks="results/tables/attacks_gradient_check.csv",
    log:
        "results/logs/aggregate_attack_tables/aggregate_attack_tables.log",
    conda:
        "../../envs/cpu.yaml"
    script:
        "../../scripts/aggregate_attack_tables.py"


rule plot_robustness_vs_time:
    """main-Sec3.1-robust-vs-t: clean and robust accuracy of f_t vs training time."""
    input:
        accuracy="results/tables/attacks_accuracy.csv",
        code=script_sources("plot_robustness_vs_time"),
    output:
        figure=report(
            "results/figures/attacks_robustness_vs_time_{dataset}.png",
            caption="../report/attacks_robustness_vs_time.rst",
            category="Sec. 3: NTK attacks",
        ),
    log:
        "results/logs/plot_robustness_vs_time/{dataset}.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        settings=attack_figure_settings,
    script:
        "../../scripts/plot_robustness_vs_time.py"


rule plot_accuracy_vs_eps:
    """main-Sec3.1: accuracy of f_∞ vs the l_inf budget, one panel per attack."""
    input:
        accuracy="results/tables/attacks_accuracy.csv",
        code=script_sources("plot_accuracy_vs_eps"),
    output:
        figure=report(
            "results/figures/attacks_accuracy_vs_eps_{dataset}.png",
            caption="../report/attacks_accuracy_vs_eps.rst",
            category="Sec. 3: NTK attacks",
        ),
    log:
        "results/logs/plot_accuracy_vs_eps/{dataset}.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        settings=attack_figure_settings,
    script:
        "../../scripts/plot_accuracy_vs_eps.py"


rule plot_adversarial_examples:
    """main-Sec3.1: clean image, perturbation and NTK adversarial example, with labels."""
    input:
        adversarial=get_example_adversarial,
        data="results/data/{dataset}.h5",
        code=script_sources("plot_adversarial_examples"),
    output:
        figure=report(
            "results/figures/attacks_examples_{dataset}.png",
            caption="../report/attacks_examples.rst",
            category="Sec. 3: NTK attacks",
        ),
    log:
        "results/logs/plot_adversarial_examples/{dataset}.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        settings=canonical(
            {
                "arch": config["attacks"]["example_arch"],
                "n_examples": config["attacks"]["n_examples"],
            }
        ),
    script:
        "../../scripts/plot_adversarial_examples.py"


rule summarize_attack_claims:
    """Findings 4, 6 and 15 (docs/findings.md): measured vs same-run nulls ± SE."""
    input:
        pointwise=get_attack_tables("pointwise.h5"),
        checks="results/tables/attacks_gradient_check.csv",
        code=script_sources("summarize_attack_claims"),
    output:
        claims="results/tables/claims/attacks.csv",
    log:
        "results/logs/summarize_attack_claims/summarize_attack_claims.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        settings=attack_claims_settings,
    script:
        "../../scripts/summarize_attack_claims.py"


rule tabulate_notebook_kernel:
    """nb-ref: clean / FGSM / PGD accuracy of the full kernel f_∞ (notebook rows)."""
    input:
        accuracy=get_notebook_attack_table,
        code=script_sources("tabulate_notebook_kernel"),
    output:
        table="results/tables/notebook_reference_kernel.csv",
    log:
        "results/logs/tabulate_notebook_kernel/tabulate_notebook_kernel.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        settings=notebook_kernel_settings,
    script:
        "../../scripts/tabulate_notebook_kernel.py"


rule aggregate_notebook_reference:
    """nb-ref: the full-kernel rows plus the per-feature rows (if that stage runs)."""
    input:
        tables=get_notebook_reference_tables,
        code=script_sources("aggregate_notebook_reference"),
    output:
        table="results/tables/notebook_reference.csv",
    log:
        "results/logs/aggregate_notebook_reference/aggregate_notebook_reference.log",
    conda:
        "../../envs/cpu.yaml"
    script:
        "../../scripts/aggregate_notebook_reference.py"
