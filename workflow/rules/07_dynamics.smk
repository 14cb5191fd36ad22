"""Stage 7: empirical-NTK dynamics, standard vs adversarial training (paper Sec. 5,
supp. App. E and E.1)."""


localrules:
    plot_kernel_distance,
    plot_top_mass,
    plot_polar_dynamics,
    plot_kernel_images,
    plot_training_curves,
    plot_linearized_training,
    summarize_dynamics_claims,


rule train_dynamics_network:
    """SGD on the supp. E CNN (standard / FGSM / PGD), eNTK of the first B training
    images and clean/PGD accuracies at every epoch; resumable per-epoch checkpoint:
    a run longer than resources.max_job_min requests that limit and continues on
    each retry (resumable_retries)."""
    input:
        data="results/data/{dataset}.h5",
        code=script_sources("train_dynamics_network"),
    output:
        run="results/dynamics/{dataset}/{regime}/seed{seed}/run.h5",
    log:
        "results/logs/train_dynamics_network/{dataset}/{regime}/seed{seed}.log",
    benchmark:
        "results/benchmarks/train_dynamics_network/{dataset}/{regime}/seed{seed}.tsv"
    wildcard_constraints:
        regime="standard|fgsm|pgd",
        seed=r"\d+",
    priority: LONG_JOB_PRIORITY
    retries: resumable_retries("train_dynamics_network")
    conda:
        "../../envs/jax.yaml"
    threads: COMPUTE_THREADS
    resources:
        gpu=1,
        mem_mb=train_dynamics_network_mem_mb,
        disk_mb=train_dynamics_network_disk_mb,
        runtime=train_dynamics_network_runtime_min,
    params:
        settings=dynamics_settings,
    script:
        "../../scripts/train_dynamics_network.py"


rule train_linearized_network:
    """supp. E.1: the PGD run of the same seed, linearised (nt.linearize) after
    {lin_epoch} epochs (from its parameter snapshot) and continued on the linear
    model with attacks on it; resumable."""
    input:
        data="results/data/{dataset}.h5",
        source="results/dynamics/{dataset}/pgd/seed{seed}/run.h5",
        code=script_sources("train_dynamics_network"),
    output:
        run="results/dynamics/{dataset}/linearized/lin{lin_epoch}/seed{seed}/run.h5",
    log:
        "results/logs/train_linearized_network/{dataset}/lin{lin_epoch}/seed{seed}.log",
    benchmark:
        "results/benchmarks/train_linearized_network/{dataset}/lin{lin_epoch}/seed{seed}.tsv"
    wildcard_constraints:
        lin_epoch=r"\d+",
        seed=r"\d+",
    priority: LONG_JOB_PRIORITY
    retries: resumable_retries("train_linearized_network")
    conda:
        "../../envs/jax.yaml"
    threads: COMPUTE_THREADS
    resources:
        gpu=1,
        mem_mb=train_dynamics_network_mem_mb,
        runtime=train_linearized_network_runtime_min,
    params:
        settings=dynamics_settings,
    script:
        "../../scripts/train_dynamics_network.py"


rule measure_kernel_dynamics:
    """Distance matrix, polar dynamics (full / top-k / bottom space), top-k mass and
    norms of a run's eNTK series (the authors' measurements.py)."""
    input:
        run="results/dynamics/{dataset}/{regime}/seed{seed}/run.h5",
        code=script_sources("measure_kernel_dynamics"),
    output:
        measures="results/dynamics/{dataset}/{regime}/seed{seed}/measures.h5",
    log:
        "results/logs/measure_kernel_dynamics/{dataset}/{regime}/seed{seed}.log",
    benchmark:
        "results/benchmarks/measure_kernel_dynamics/{dataset}/{regime}/seed{seed}.tsv"
    wildcard_constraints:
        regime="standard|fgsm|pgd",
        seed=r"\d+",
    conda:
        "../../envs/cpu.yaml"
    threads: COMPUTE_THREADS
    resources:
        mem_mb=measure_kernel_dynamics_mem_mb,
        runtime=60,
    params:
        settings=canonical(pick(config["dynamics"], "mass_top_k", "polar_top_k")),
    script:
        "../../scripts/measure_kernel_dynamics.py"


rule plot_kernel_distance:
    """main-Fig4 [INFER]: epoch x epoch kernel distance 1 - sim(K_s, K_t) per regime."""
    input:
        measures=get_dynamics_measures,
        code=script_sources("plot_kernel_distance"),
    output:
        png=report(
            "results/figures/dynamics_distance_{dataset}.png",
            caption="../report/dynamics_distance.rst",
            category="Kernel dynamics",
        ),
    log:
        "results/logs/plot_kernel_distance/{dataset}.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        settings=dataset_figure_settings(regimes=config["dynamics"]["regimes"]),
    script:
        "../../scripts/plot_kernel_distance.py"


rule plot_top_mass:
    """main-Fig5 (top-20 mass, CIFAR-10) and supp-Fig7 (top-10/top-20 mass panels):
    concentration of the eNTK norm on its top eigenvalues per epoch and regime, every
    seed (the claims' SE is the seed spread)."""
    input:
        measures=get_all_dynamics_measures,
        code=script_sources("plot_top_mass"),
    output:
        main=report(
            "results/figures/dynamics_mass_main.png",
            caption="../report/dynamics_mass_main.rst",
            category="Kernel dynamics",
        ),
        supp=report(
            "results/figures/dynamics_mass_supp.png",
            caption="../report/dynamics_mass_supp.rst",
            category="Kernel dynamics",
        ),
    log:
        "results/logs/plot_top_mass/plot_top_mass.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        settings=canonical(
            {
                "sources": dynamics_sources(),
                "mass_top_k": config["dynamics"]["mass_top_k"],
            }
        ),
    script:
        "../../scripts/plot_top_mass.py"


rule plot_polar_dynamics:
    """main-Fig6 (full space), supp-Fig8 (top-k eigenspace) and code-bottom-polar:
    polar dynamics (arccos sim(K_t, K_0), ||K_t - K_0|| / ||K_E - K_0||) per regime."""
    input:
        measures=get_dynamics_measures,
        code=script_sources("plot_polar_dynamics"),
    output:
        full=report(
            "results/figures/dynamics_polar_full_{dataset}.png",
            caption="../report/dynamics_polar_full.rst",
            category="Kernel dynamics",
        ),
        top=report(
            "results/figures/dynamics_polar_top_{dataset}.png",
            caption="../report/dynamics_polar_top.rst",
            category="Kernel dynamics",
        ),
        bottom=report(
            "results/figures/dynamics_polar_bottom_{dataset}.png",
            caption="../report/dynamics_polar_bottom.rst",
            category="Kernel dynamics",
        ),
    log:
        "results/logs/plot_polar_dynamics/{dataset}.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        settings=dataset_figure_settings(polar_top_k=config["dynamics"]["polar_top_k"]),
    script:
        "../../scripts/plot_polar_dynamics.py"


rule plot_kernel_images:
    """supp-Fig9 (MNIST) and the main-text kernel figure (CIFAR-10): eNTK at
    initialisation, after standard and after PGD training, one colour scale."""
    input:
        standard=get_first_seed_run("standard"),
        pgd=get_first_seed_run("pgd"),
        code=script_sources("plot_kernel_images"),
    output:
        png=report(
            "results/figures/dynamics_kernels_{dataset}.png",
            caption="../report/dynamics_kernels.rst",
            category="Kernel dynamics",
        ),
    log:
        "results/logs/plot_kernel_images/{dataset}.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        settings=dataset_figure_settings(),
    script:
        "../../scripts/plot_kernel_images.py"


rule plot_training_curves:
    """supp-Fig6: train/test clean and PGD accuracy per epoch of every run (rows:
    datasets; columns: regimes)."""
    input:
        runs=get_first_seed_runs,
        code=script_sources("plot_training_curves"),
    output:
        png=report(
            "results/figures/dynamics_training_curves.png",
            caption="../report/dynamics_training_curves.rst",
            category="Kernel dynamics",
        ),
    log:
        "results/logs/plot_training_curves/plot_training_curves.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        settings=canonical(
            {
                "sources": dynamics_sources(),
                "regimes": config["dynamics"]["regimes"],
            }
        ),
    script:
        "../../scripts/plot_training_curves.py"


rule plot_linearized_training:
    """supp-Fig10: accuracies of PGD training linearised after each linearisation
    epoch, next to the non-linearised PGD run."""
    input:
        runs=get_linearized_runs,
        reference=get_first_seed_run("pgd"),
        code=script_sources("plot_linearized_training"),
    output:
        png=report(
            "results/figures/dynamics_linearized_{dataset}.png",
            caption="../report/dynamics_linearized.rst",
            category="Kernel dynamics",
        ),
    log:
        "results/logs/plot_linearized_training/{dataset}.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        settings=dataset_figure_settings(),
    script:
        "../../scripts/plot_linearized_training.py"


rule summarize_dynamics_claims:
    """Claims rows for findings 8-13 (docs/findings.md) from the measured series."""
    input:
        measures=get_all_dynamics_measures,
        runs=get_all_dynamics_runs,
        linearized=get_all_linearized_runs,
        code=script_sources("summarize_dynamics_claims"),
    output:
        claims="results/tables/claims/dynamics.csv",
        summary="results/tables/dynamics_summary.csv",
    log:
        "results/logs/summarize_dynamics_claims/summarize_dynamics_claims.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        settings=canonical(pick(config["dynamics"], "polar_top_k")),
    script:
        "../../scripts/summarize_dynamics_claims.py"
