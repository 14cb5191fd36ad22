"""Inputs and params of the dynamics stage (no rules)."""


def dynamics_datasets():
    """Datasets with kernel-dynamics runs (the keys of dynamics.datasets); none when
    dynamics.regimes is empty (no regime to train: the stage is off)."""
    if not config["dynamics"]["regimes"]:
        return []
    return list(config["dynamics"]["datasets"])


def dynamics_sources():
    """{dataset: source} of the dynamics datasets: the figures' dataset labels come
    from the source (ntkadv.data.sources), whatever the dataset's config name."""
    return {ds: dataset_source(ds) for ds in dynamics_datasets()}


def dataset_figure_settings(**params):
    """params.settings of a per-dataset dynamics figure: `params` and the source
    of the job's dataset (its figures' dataset label, ntkadv.data.sources)."""

    def settings(wildcards):
        return canonical({"source": dataset_source(wildcards.dataset), **params})

    return settings


def dynamics_seeds(dataset):
    """Seeds of a dataset's runs: its own dynamics.datasets.<d>.seeds, else
    dynamics.seeds."""
    own = config["dynamics"]["datasets"][dataset].get("seeds")
    return list(own if own is not None else config["dynamics"]["seeds"])


def linearized_epochs(dataset):
    """Linearisation epochs of a dataset that fall inside its training run."""
    if dataset not in config["dynamics"]["linearize"]["datasets"]:
        return []
    epochs = config["dynamics"]["datasets"][dataset]["epochs"]
    return [e for e in config["dynamics"]["linearize"]["epochs"] if e <= epochs]


def dynamics_settings(wildcards):
    """ntkadv.dynamics.task.DynamicsSettings of a training job (rules
    train_dynamics_network and train_linearized_network): the dataset's entry, the
    shared dynamics keys, eps, the seed, the regime (linearised runs are PGD), the
    linearisation epoch and the snapshots kept. The training PGD steps only for PGD."""
    dyn = config["dynamics"]
    entry = dict(dyn["datasets"][wildcards.dataset])
    entry.pop("seeds", None)  # which runs exist, not a setting of one run
    regime = getattr(wildcards, "regime", "pgd")  # linearised runs are PGD
    if regime != "pgd":
        entry["pgd_steps"] = None
    lin_epoch = getattr(wildcards, "lin_epoch", None)
    return canonical(
        {
            **pick(dyn, "kernel_inputs", "ntk_implementation", "eval_batch"),
            **entry,
            "eps": config["datasets"][wildcards.dataset]["eps"],
            "seed": int(wildcards.seed),
            "regime": regime,
            "lin_epoch": None if lin_epoch is None else int(lin_epoch),
            "snapshots": [] if lin_epoch is not None else dynamics_snapshots(wildcards),
        }
    )


def dynamics_snapshots(wildcards):
    """Epochs whose parameters a PGD run keeps: where its linearised runs branch."""
    lin = config["dynamics"]["linearize"]
    if wildcards.regime != "pgd" or int(wildcards.seed) not in lin["seeds"]:
        return []
    return linearized_epochs(wildcards.dataset)


def _run_file(ds, regime, seed, name="run.h5"):
    return f"results/dynamics/{ds}/{regime}/seed{seed}/{name}"


def get_dynamics_measures(wildcards):
    """measures.h5 of every regime of one dataset (first seed), in regimes order."""
    seed = dynamics_seeds(wildcards.dataset)[0]
    return [
        _run_file(wildcards.dataset, r, seed, "measures.h5")
        for r in config["dynamics"]["regimes"]
    ]


def get_all_dynamics_measures(wildcards):
    return [
        _run_file(ds, r, seed, "measures.h5")
        for ds in dynamics_datasets()
        for r in config["dynamics"]["regimes"]
        for seed in dynamics_seeds(ds)
    ]


def get_first_seed_measures(wildcards):
    """measures.h5 of every dataset and regime, first seed (the figures)."""
    return [
        _run_file(ds, r, dynamics_seeds(ds)[0], "measures.h5")
        for ds in dynamics_datasets()
        for r in config["dynamics"]["regimes"]
    ]


def get_all_dynamics_runs(wildcards):
    return [
        _run_file(ds, r, seed)
        for ds in dynamics_datasets()
        for r in config["dynamics"]["regimes"]
        for seed in dynamics_seeds(ds)
    ]


def get_first_seed_runs(wildcards):
    return [
        _run_file(ds, r, dynamics_seeds(ds)[0])
        for ds in dynamics_datasets()
        for r in config["dynamics"]["regimes"]
    ]


def get_first_seed_run(regime):
    def run(wildcards):
        return _run_file(
            wildcards.dataset, regime, dynamics_seeds(wildcards.dataset)[0]
        )

    return run


def get_linearized_runs(wildcards):
    seed = config["dynamics"]["linearize"]["seeds"][0]
    return [
        f"results/dynamics/{wildcards.dataset}/linearized/lin{e}/seed{seed}/run.h5"
        for e in linearized_epochs(wildcards.dataset)
    ]


def get_all_linearized_runs(wildcards):
    return [
        f"results/dynamics/{ds}/linearized/lin{e}/seed{seed}/run.h5"
        for ds in config["dynamics"]["linearize"]["datasets"]
        for e in linearized_epochs(ds)
        for seed in config["dynamics"]["linearize"]["seeds"]
    ]
