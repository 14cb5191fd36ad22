"""Stage 5: transfer of NTK attacks to wide two-layer nets (paper Sec. 3.2, supp. App. C)."""


localrules:
    aggregate_transfer,
    summarize_transfer_claims,
    plot_transfer_curves,
    plot_transfer_gradients,


rule compute_transfer_reference:
    """NTK side: f_t, its FGSM loss gradient and accuracies at every eval epoch."""
    input:
        data="results/data/{dataset}.h5",
        gram=transfer_gram_input,
        jacobian="results/ntk/{dataset}/{arch}/jacobian.h5",
        eigh=transfer_eigh_input,
        code=script_sources("compute_transfer_reference"),
    output:
        reference="results/transfer/{dataset}/{arch}/ntk_reference.h5",
    log:
        "results/logs/compute_transfer_reference/{dataset}/{arch}.log",
    benchmark:
        "results/benchmarks/compute_transfer_reference/{dataset}/{arch}.tsv"
    conda:
        "../../envs/jax.yaml"
    threads: COMPUTE_THREADS
    resources:
        mem_mb=compute_transfer_reference_mem_mb,
        runtime=compute_transfer_reference_runtime_min,
    params:
        settings=transfer_reference_settings,
    script:
        "../../scripts/compute_transfer_reference.py"


rule train_twolayer_net:
    """Full-batch GD of the net of supp. Eq. 28 (one width, one seed) vs the NTK."""
    input:
        data="results/data/{dataset}.h5",
        reference="results/transfer/{dataset}/{arch}/ntk_reference.h5",
        code=script_sources("train_twolayer_net"),
    output:
        run="results/transfer/{dataset}/{arch}/width{width}_seed{seed}.h5",
    log:
        "results/logs/train_twolayer_net/{dataset}/{arch}/width{width}_seed{seed}.log",
    benchmark:
        "results/benchmarks/train_twolayer_net/{dataset}/{arch}/width{width}_seed{seed}.tsv"
    wildcard_constraints:
        width=r"\d+",
        seed=r"\d+",
    conda:
        "../../envs/jax.yaml"
    threads: COMPUTE_THREADS
    resources:
        gpu=1,
        mem_mb=train_twolayer_net_mem_mb,
        runtime=train_twolayer_net_runtime_min,
    params:
        settings=twolayer_net_settings,
    script:
        "../../scripts/train_twolayer_net.py"


rule aggregate_transfer:
    """Per-epoch and per-run tables of every two-layer net."""
    input:
        references=get_transfer_references,
        runs=get_transfer_runs,
        code=script_sources("aggregate_transfer"),
    output:
        epochs="results/tables/transfer_epochs.csv",
        runs="results/tables/transfer_runs.csv",
    log:
        "results/logs/aggregate_transfer/aggregate_transfer.log",
    conda:
        "../../envs/cpu.yaml"
    script:
        "../../scripts/aggregate_transfer.py"


rule summarize_transfer_claims:
    """Finding 5 (docs/findings.md): gradient alignment vs mismatched pairs, attack
    transfer at informative epochs, seed spread, width; bootstrap over test points."""
    input:
        runs=get_transfer_runs,
        code=script_sources("summarize_transfer_claims"),
    output:
        claims="results/tables/claims/transfer.csv",
    log:
        "results/logs/summarize_transfer_claims/summarize_transfer_claims.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        settings=transfer_claims_settings,
    script:
        "../../scripts/summarize_transfer_claims.py"


rule plot_transfer_curves:
    """main-Fig1 (cifar2) and supp-Fig1a (mnist): cosine similarity of loss gradients
    (and of mismatched pairs) and robust accuracy against own (solid) / NTK (dashed)
    FGSM and random signs (dotted) vs epoch."""
    input:
        epochs="results/tables/transfer_epochs.csv",
        code=script_sources("plot_transfer_curves"),
    output:
        figure=report(
            "results/figures/transfer_curves_{dataset}.png",
            caption="../report/transfer_curves.rst",
            category="Sec. 3.2: transfer to wide nets",
        ),
    log:
        "results/logs/plot_transfer_curves/{dataset}.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        settings=transfer_curves_settings,
    script:
        "../../scripts/plot_transfer_curves.py"


rule plot_transfer_gradients:
    """supp-Fig1b: loss-gradient images of one test image; rows = epochs, columns =
    narrowest width, widest width, NTK."""
    input:
        reference=get_transfer_image_reference,
        runs=get_transfer_image_runs,
        code=script_sources("plot_transfer_gradients"),
    output:
        figure=report(
            "results/figures/transfer_gradients.png",
            caption="../report/transfer_gradients.rst",
            category="Sec. 3.2: transfer to wide nets",
        ),
    log:
        "results/logs/plot_transfer_gradients/plot_transfer_gradients.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        settings=canonical({"image_index": config["transfer"]["image_index"]}),
    script:
        "../../scripts/plot_transfer_gradients.py"
