"""Inputs and params of the dynamics stage (no rules)."""


def dynamics_datasets():
    """Datasets with kernel-dynamics runs (the keys of dynamics.datasets)."""
    return list(config["dynamics"]["datasets"])


def linearized_epochs(dataset):
    """Linearisation epochs of a dataset that fall inside its training run."""
    epochs = config["dynamics"]["datasets"][dataset]["epochs"]
    return [e for e in config["dynamics"]["linearize"]["epochs"] if e <= epochs]


def dynamics_settings(wildcards):
    """ntkadv.dynamics.task.DynamicsSettings of a training job: the dataset's entry,
    the shared dynamics keys, eps and seed. The training PGD steps only for PGD."""
    dyn = config["dynamics"]
    entry = dict(dyn["datasets"][wildcards.dataset])
    regime = getattr(wildcards, "regime", "pgd")  # linearised runs are PGD
    if regime != "pgd":
        entry["pgd_steps"] = None
    return canonical(
        {
            **pick(dyn, "kernel_inputs", "ntk_implementation", "eval_batch"),
            **entry,
            "eps": config["datasets"][wildcards.dataset]["eps"],
            "seed": config["seed"],
        }
    )


def get_lin_epoch(wildcards):
    return int(wildcards.lin_epoch)


def get_dynamics_measures(wildcards):
    """measures.h5 of every regime of one dataset, in dynamics.regimes order."""
    return [
        f"results/dynamics/{wildcards.dataset}/{regime}/measures.h5"
        for regime in config["dynamics"]["regimes"]
    ]


def get_all_dynamics_measures(wildcards):
    return [
        f"results/dynamics/{ds}/{regime}/measures.h5"
        for ds in dynamics_datasets()
        for regime in config["dynamics"]["regimes"]
    ]


def get_all_dynamics_runs(wildcards):
    return [
        f"results/dynamics/{ds}/{regime}/run.h5"
        for ds in dynamics_datasets()
        for regime in config["dynamics"]["regimes"]
    ]


def get_linearized_runs(wildcards):
    return [
        f"results/dynamics/{wildcards.dataset}/linearized/lin{e}/run.h5"
        for e in linearized_epochs(wildcards.dataset)
    ]


def get_all_linearized_runs(wildcards):
    return [
        f"results/dynamics/{ds}/linearized/lin{e}/run.h5"
        for ds in config["dynamics"]["linearize"]["datasets"]
        for e in linearized_epochs(ds)
    ]
