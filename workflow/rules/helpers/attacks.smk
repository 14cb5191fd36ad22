"""Inputs and params of the attack stage (no rules)."""


def attack_pairs():
    """(dataset, arch) pairs whose kernel machine is attacked."""
    from ntkadv.kernels.families import attacked_archs

    archs = attacked_archs(config)
    return [(ds, arch) for ds in config["kernels"]["datasets"] for arch in archs]


def get_attack_tables(name):
    """results/attacks/{dataset}/{arch}/<name> of every attacked kernel."""
    return [f"results/attacks/{ds}/{arch}/{name}" for ds, arch in attack_pairs()]


def attack_ntk_settings(wildcards):
    """ntkadv.attacks.task.AttackSettings: the predictor grid, the attacks and the
    budget of this architecture's family (not the other families')."""
    att = config["attacks"]
    return canonical(
        {
            "arch": config["architectures"][wildcards.arch],
            "eps": config["datasets"][wildcards.dataset]["eps"],
            "x64": config["kernels"]["x64"],
            "predictor": config["predictor"],
            "budget": att["budget"][arch_family(wildcards.arch)],
            **pick(att, "eps_multipliers", "pgd_steps", "pgd_rel_step"),
            **pick(att, "block_size", "n_gradient_check", "null_permutations"),
            "seed": config["seed"],
            **extra_eps_param(wildcards.dataset),
        }
    )


def attacked_arch_order(wildcards):
    """Attacked architectures in config order (panel order of the figures)."""
    from ntkadv.kernels.families import attacked_archs

    return attacked_archs(config)


def attack_figure_settings(wildcards):
    """ntkadv.plotting.attacks.AccuracyFigureSettings of the accuracy figures."""
    return canonical({"archs": attacked_arch_order(wildcards)})


def get_example_adversarial(wildcards):
    """Adversarial inputs of the example-figure kernel on this dataset."""
    arch = config["attacks"]["example_arch"]
    return f"results/attacks/{wildcards.dataset}/{arch}/adversarial.h5"


def notebook_kernel():
    """config attacks.notebook, or a clear error when the notebook table is off."""
    nb = config["attacks"]["notebook"]
    if not nb:
        raise ValueError(
            "config key attacks.notebook is null: the notebook reference tables are "
            "disabled (set it to {dataset: cifar2, arch: fc1} to build them)"
        )
    return nb


def get_notebook_attack_table(wildcards):
    nb = notebook_kernel()
    return f"results/attacks/{nb['dataset']}/{nb['arch']}/accuracy.csv"


def attack_claims_settings(wildcards):
    """ntkadv.attacks.summary.AttackClaimsSettings of rule summarize_attack_claims."""
    return canonical(
        {
            "near_zero": config["attacks"]["near_zero"],
            "notebook": config["attacks"]["notebook"],
            "seed": config["seed"],
        }
    )


def notebook_kernel_settings(wildcards):
    """ntkadv.attacks.summary.NotebookKernelSettings of rule tabulate_notebook_kernel
    (the notebook kernel, its dataset entry and the PGD settings it was run with)."""
    att = config["attacks"]
    nb = notebook_kernel()
    budget = att["budget"][arch_family(nb["arch"])]
    return canonical(
        {
            "notebook": nb,
            "dataset": pick(
                config["datasets"][nb["dataset"]], "n_train", "selection", "eps"
            ),
            "pgd": {
                "steps": budget["pgd_steps"] or att["pgd_steps"],
                "rel_step": att["pgd_rel_step"],
            },
        }
    )


def get_notebook_reference_tables(wildcards):
    """The kernel rows, plus results/tables/notebook_reference_features.csv when the
    features stage scores the notebook kernel."""
    features = "results/tables/notebook_reference_features.csv"
    return ["results/tables/notebook_reference_kernel.csv"] + (
        [features] if features in feature_targets() else []
    )


def sharded_attack_kernels():
    """Attacked kernels whose attack_ntk request exceeds resources.max_job_min:
    they run as attack_ntk_shard jobs plus merge_attack_shards."""
    return sharded_kernels("attack_ntk", attack_pairs())


def get_attack_shards(wildcards):
    """The shard files of this kernel's attacks, in evaluation-point order."""
    k = len(point_shards("attack_ntk", wildcards))
    base = f"results/attacks/{wildcards.dataset}/{wildcards.arch}/shards"
    return [f"{base}/{i}.h5" for i in range(k)]


def attack_ntk_shard_settings(wildcards):
    """ntkadv.attacks.task.AttackShardSettings: the kernel's attack settings and
    the shard's evaluation points start:stop."""
    i0, i1 = point_shards("attack_ntk", wildcards)[int(wildcards.shard)]
    return canonical(
        {"attack": attack_ntk_settings(wildcards), "start": i0, "stop": i1}
    )
