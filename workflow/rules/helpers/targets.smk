"""The targets of the default `all` job: one function per stage (no rules)."""


def data_targets():
    return expand("results/data/{dataset}.h5", dataset=config["datasets"])


def kernel_targets():
    return expand(
        "results/ntk/{dataset}/{arch}/{what}.h5",
        dataset=config["kernels"]["datasets"],
        arch=config["architectures"],
        what=["gram", "jacobian"],
    )


def spectra_targets():
    return expand(
        "results/spectra/{dataset}/{arch}/eigh.h5",
        dataset=config["kernels"]["datasets"],
        arch=config["architectures"],
    )


def attack_targets():
    if not attack_pairs():
        return []
    datasets = config["kernels"]["datasets"]
    figures = [
        f"results/figures/attacks_{name}_{ds}.png"
        for name in ("robustness_vs_time", "accuracy_vs_eps", "examples")
        for ds in datasets
    ]
    tables = [
        "results/tables/attacks_accuracy.csv",
        "results/tables/claims/attacks.csv",
    ]
    notebook = ["results/tables/notebook_reference.csv"] * bool(
        config["attacks"]["notebook"]
    )
    return figures + tables + notebook


def feature_targets():
    datasets = feature_datasets()
    if not datasets:
        return []
    figures = [
        f"results/figures/features_{name}_{ds}.png"
        for name in ("ru", "gradients", "consistency", "topr")
        for ds in datasets
    ] + ["results/figures/features_ru_main.png"]
    tables = [f"results/tables/features_consistency_{ds}.csv" for ds in datasets]
    tables += ["results/tables/claims/features.csv"]
    if notebook_features():
        tables += ["results/tables/notebook_reference_features.csv"]
    return figures + tables


def transfer_targets():
    tr = config["transfer"]
    if not tr["datasets"]:
        return []
    figures = expand("results/figures/transfer_curves_{ds}.png", ds=tr["datasets"])
    if tr["image_dataset"] in tr["datasets"]:
        figures.append("results/figures/transfer_gradients.png")
    return figures + [
        "results/tables/transfer_epochs.csv",
        "results/tables/transfer_runs.csv",
        "results/tables/claims/transfer.csv",
    ]


def dynamics_targets():
    datasets = dynamics_datasets()
    if not datasets:
        return []
    regimes = config["dynamics"]["regimes"]
    names = ["distance", "polar_full", "polar_top", "polar_bottom"]
    if {"standard", "pgd"} <= set(regimes):
        names.append("kernels")
    figures = [
        f"results/figures/dynamics_{n}_{ds}.png" for n in names for ds in datasets
    ]
    figures += [
        f"results/figures/dynamics_{name}.png"
        for name in ("mass_main", "mass_supp", "training_curves")
    ]
    if "pgd" in regimes:
        figures += [
            f"results/figures/dynamics_linearized_{ds}.png"
            for ds in config["dynamics"]["linearize"]["datasets"]
        ]
    tables = [
        "results/tables/claims/dynamics.csv",
        "results/tables/dynamics_summary.csv",
    ]
    return figures + tables


def stage_targets():
    """The targets of every enabled stage (a disabled stage contributes none)."""
    return (
        attack_targets() + feature_targets() + transfer_targets() + dynamics_targets()
    )


def get_claims_tables(wildcards):
    """Per-stage claims tables (results/tables/claims/<stage>.csv) of the stages this
    config enables: a stage whose datasets are empty has no claims job."""
    return sorted(t for t in stage_targets() if t.startswith("results/tables/claims/"))


def get_final_targets():
    """Everything `snakemake` builds by default (rule all)."""
    claims = (
        ["results/tables/claims.csv", "results/tables/claims.html"]
        if get_claims_tables(None)
        else []
    )
    return (
        data_targets() + kernel_targets() + spectra_targets() + stage_targets() + claims
    )
