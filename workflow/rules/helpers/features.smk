"""Inputs and params of the features stage (no rules)."""


def feature_datasets():
    """Datasets whose eigenfeatures are scored (features.datasets with a kernel)."""
    kernels = config["kernels"]["datasets"]
    return [ds for ds in config["features"]["datasets"] if ds in kernels]


def features_n_eval(wildcards):
    """Evaluation points of the feature scores for this arch family (None = all)."""
    return config["features"]["n_eval"][arch_family(wildcards.arch)]


def features_spread(wildcards):
    """Eigen-indices scored beyond top_k for this arch family (None = all)."""
    return config["features"]["spread"][arch_family(wildcards.arch)]


def feature_image_kernel(wildcards):
    """Whether this kernel's scores need the notebook eigen-indices (the gradient
    grid of features.image_arch, or the notebook table's kernel)."""
    ft = config["features"]
    return wildcards.arch == ft["image_arch"] or (
        notebook_features() == (wildcards.dataset, wildcards.arch)
    )


def score_features_settings(wildcards):
    """ntkadv.features.task.ScoreSettings of score_features. Label-free, so no
    permutation or seed key: the null controls never rerun it."""
    ft = config["features"]
    images = ft["image_indices"] if feature_image_kernel(wildcards) else []
    return canonical(
        {
            **pick(ft, "top_k", "chunk", "image_reference_n"),
            **pick(ft, "image_test_index", "prop1_points"),
            "image_indices": images,
            "spread": features_spread(wildcards),
            "frequency_k": ft["frequency"]["k"],
            "arch": config["architectures"][wildcards.arch],
            "eps": config["datasets"][wildcards.dataset]["eps"],
            "n_eval": features_n_eval(wildcards),
            "block": config["kernels"]["block_size"],
            "x64": config["kernels"]["x64"],
            **extra_eps_param(wildcards.dataset),
        }
    )


def topr_settings(wildcards):
    """ntkadv.features.task.ToprSettings of rule evaluate_topr_kernels."""
    tp = config["features"]["topr"]
    keys = ("n_val", "n_candidates", "grid", "pgd_steps", "pgd_rel_step")
    return canonical(
        {
            **pick(tp, *keys, "null_permutations"),
            "seed": config["seed"],
            "arch": config["architectures"][wildcards.arch],
            "eps": config["datasets"][wildcards.dataset]["eps"],
            "n_eval": features_n_eval(wildcards),
            "block": config["kernels"]["block_size"],
            "x64": config["kernels"]["x64"],
            **extra_eps_param(wildcards.dataset),
        }
    )


def feature_null_params():
    """The label permutations every CPU rule of the stage rescores (finding
    nulls, null cloud of the R-U figure): count and the config seed."""
    return canonical(
        {
            "permutations": config["features"]["null_permutations"],
            "seed": config["seed"],
        }
    )


def consistency_settings(wildcards):
    """ntkadv.features.summary.ConsistencySettings of measure_feature_consistency
    (archs: the order of its scores / eigh inputs)."""
    ft = config["features"]
    return canonical(
        {
            "archs": get_feature_archs(wildcards),
            "top": ft["consistency_top"],
            "top_k": ft["top_k"],
            "null": feature_null_params(),
        }
    )


def feature_claim_settings():
    """ntkadv.features.summary.FeatureClaimSettings of summarize_feature_claims."""
    ft = config["features"]
    return canonical(
        {
            **pick(ft, "top_k", "nonrobust_max", "consistency_top"),
            **pick(ft, "bands", "frequency"),
            "null": feature_null_params(),
        }
    )


def all_archs():
    """Every architecture in canonical order (ntkadv.kernels.families.ordered_archs)."""
    from ntkadv.kernels.families import ordered_archs

    return ordered_archs(config["architectures"])


def get_feature_archs(wildcards):
    """Every architecture, in canonical order (the order of the inputs below)."""
    return all_archs()


def get_feature_scores(wildcards):
    return [
        f"results/features/{wildcards.dataset}/{arch}/scores.h5" for arch in all_archs()
    ]


def get_feature_spectra(wildcards):
    return [
        f"results/spectra/{wildcards.dataset}/{arch}/eigh.h5" for arch in all_archs()
    ]


def get_feature_ru_scores(wildcards):
    """A dataset's kernels, or for 'main' the main_archs pair on every dataset."""
    if wildcards.selection != "main":
        datasets, archs = [wildcards.selection], all_archs()
    else:
        datasets = feature_datasets()
        archs = config["features"]["main_archs"]  # defined (configcheck)
    return [
        f"results/features/{ds}/{arch}/scores.h5" for ds in datasets for arch in archs
    ]


def get_feature_ru_title(wildcards):
    if wildcards.selection == "main":
        return "NTK features in robustness-usefulness space (main Fig. 2)"
    return f"NTK features in robustness-usefulness space: {wildcards.selection}"


def feature_ru_settings(wildcards):
    """ntkadv.plotting.features.RuSettings of rule plot_feature_ru."""
    ft = config["features"]
    return canonical(
        {
            **pick(ft, "top_k", "nonrobust_max"),
            "title": get_feature_ru_title(wildcards),
            "null": feature_null_params(),
        }
    )


def get_feature_image_scores(wildcards):
    arch = config["features"]["image_arch"]
    return f"results/features/{wildcards.dataset}/{arch}/scores.h5"


def get_topr_result(wildcards):
    arch = config["features"]["topr"]["arch"]
    return f"results/features/{wildcards.dataset}/{arch}/topr.h5"


def get_all_feature_scores(wildcards):
    return [
        f"results/features/{ds}/{arch}/scores.h5"
        for ds in feature_datasets()
        for arch in all_archs()
    ]


def get_feature_consistency_tables(wildcards):
    return [
        f"results/tables/features_consistency_{ds}.csv" for ds in feature_datasets()
    ]


def get_all_topr_results(wildcards):
    arch = config["features"]["topr"]["arch"]
    return [f"results/features/{ds}/{arch}/topr.h5" for ds in feature_datasets()]


def notebook_features():
    """(dataset, arch) of the per-feature notebook rows, or None (features.notebook
    null, or the stage off); both are defined feature names (ntkadv.configcheck)."""
    nb = config["features"]["notebook"]
    if nb is None or not feature_datasets():
        return None
    return nb["dataset"], nb["arch"]


def get_notebook_feature_scores(wildcards):
    ds, arch = notebook_features()
    return f"results/features/{ds}/{arch}/scores.csv"


def notebook_feature_settings(wildcards):
    """ntkadv.features.summary.NotebookFeatureSettings of tabulate_notebook_features
    (n_train: the notebook dataset's)."""
    ft = config["features"]
    return canonical(
        {
            "indices": ft["image_indices"],
            "reference_n": ft["image_reference_n"],
            "n_train": config["datasets"][notebook_features()[0]]["n_train"],
        }
    )


def sharded_feature_kernels():
    """Scored kernels whose score_features request exceeds resources.max_job_min:
    they run as score_features_shard jobs plus merge_feature_shards."""
    pairs = [
        (ds, arch) for ds in feature_datasets() for arch in config["architectures"]
    ]
    return sharded_kernels("score_features", pairs)


def get_feature_shards(wildcards):
    """The shard files of this kernel's feature scores, in test-point order."""
    k = len(point_shards("score_features", wildcards))
    base = f"results/features/{wildcards.dataset}/{wildcards.arch}/shards"
    return [f"{base}/{i}.h5" for i in range(k)]


def score_features_shard_settings(wildcards):
    """ntkadv.features.task.ScoreShardSettings: the kernel's score settings and the
    shard's test points start:stop."""
    i0, i1 = point_shards("score_features", wildcards)[int(wildcards.shard)]
    return canonical(
        {"score": score_features_settings(wildcards), "start": i0, "stop": i1}
    )
