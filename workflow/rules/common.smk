"""Validation, wildcard constraints, target and resource functions. No rules here."""

import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# the library (scripts/ntkadv) is importable from the workflow too
sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))


validate(config, schema="../schemas/config.schema.yaml")

# Threads of every JAX compute job (kernels, attacks, features, training). On the
# 2-core laptop run, CPU time / wall time of each such job was 0.9-1.2 (benchmark
# files), so one thread per job lets two jobs run side by side; declaring 2 threads
# ran them one at a time and left a core idle.
COMPUTE_THREADS = 1
# The training runs of the dynamics stage are the longest jobs (up to ~10 min each at
# laptop scale) and sit at the bottom of the DAG; starting them first shortens the
# tail of a run in which everything else is short.
LONG_JOB_PRIORITY = 10


def _check_config_references():
    """Cross-key checks JSON Schema cannot express; fail before any job runs."""
    for name in config["kernels"]["datasets"]:
        if name not in config["datasets"]:
            raise ValueError(
                f"config key kernels.datasets: unknown dataset '{name}' "
                f"(defined: {sorted(config['datasets'])})"
            )
    for name, spec in config["datasets"].items():
        if spec["source"] == "mnist" and len(spec["classes"]) > 10:
            raise ValueError(f"config key datasets.{name}.classes: too many classes")


_check_config_references()


def _check_attack_config():
    """Attack-stage references: architectures, example kernel, notebook kernel."""
    att = config["attacks"]
    archs = att["architectures"] or list(config["architectures"])
    for arch in archs:
        if arch not in config["architectures"]:
            raise ValueError(f"config key attacks.architectures: unknown arch '{arch}'")
    if att["example_arch"] not in archs:
        raise ValueError(
            f"config key attacks.example_arch: '{att['example_arch']}' is not attacked"
            f" (attacked: {archs})"
        )
    nb = att["notebook"]
    if nb and (
        nb["arch"] not in archs or nb["dataset"] not in config["kernels"]["datasets"]
    ):
        raise ValueError(
            f"config key attacks.notebook: {nb} must name an attacked architecture "
            f"and a kernels.datasets entry"
        )


_check_attack_config()


wildcard_constraints:
    dataset="|".join(config["datasets"]),
    arch="|".join(config["architectures"]),


# ---------------------------------------------------------------- input functions


def get_raw_inputs(wildcards):
    """Raw files of the dataset's source: local copies if every file is found in
    data.search_dirs (no download job), else the download rule's folder."""
    from ntkadv.data import locate_raw

    source = config["datasets"][wildcards.dataset]["source"]
    found = locate_raw(source, config["data"]["search_dirs"])
    missing = [rel for rel, path in found.items() if path is None]
    if not missing:
        return [str(path) for path in found.values()]
    if not config["data"]["download"]:
        raise WorkflowError(
            f"raw {source} file(s) {missing} not found in data.search_dirs "
            f"{config['data']['search_dirs']} and data.download is false"
        )
    return [f"results/raw/{source}"]


# ---------------------------------------------------------------- params helpers


def get_dataset_spec(wildcards):
    """The dataset's config entry plus the global seed (rule params)."""
    return {**config["datasets"][wildcards.dataset], "seed": config["seed"]}


def get_arch_spec(wildcards):
    """The architecture's config entry (rule params)."""
    return config["architectures"][wildcards.arch]


# ---------------------------------------------------------------- resources


def _n(wildcards):
    spec = config["datasets"][wildcards.dataset]
    return spec["n_train"], spec["n_test"], 3072 if spec["source"] == "cifar10" else 784


def compute_ntk_gram_mem_mb(wildcards, attempt):
    """Gram (n+m) x n float64 plus one block of conv intermediates, doubled on retry."""
    n, m, _ = _n(wildcards)
    gram_mb = (n + m) * n * 8 / 2**20
    return int((2000 + 2 * gram_mb) * attempt)


def compute_ntk_input_jacobian_mem_mb(wildcards, attempt):
    """~3 buffered row blocks (rows x n x d float64; rows as in
    ntkadv.jacobians.dense_tile_rows, at most 512 MB each), doubled on retry."""
    n, _, d = _n(wildcards)
    rows = max(1, min(config["kernels"]["block_size"] // 10, 2**29 // (8 * n * d)))
    return int((2000 + 3 * rows * n * d * 8 / 2**20) * attempt)


def kernel_runtime_min(wildcards, attempt):
    """Generous wall time for the kernel jobs (minutes), doubled on retry."""
    n, m, d = _n(wildcards)
    return int(max(30, (n + m) * n * d / 2e9) * attempt)


def eigendecompose_gram_mem_mb(wildcards, attempt):
    """Gram, eigenvectors and LAPACK workspace (~4 n x n float64), doubled on retry."""
    n, _, _ = _n(wildcards)
    return int((1000 + 4 * n * n * 8 / 2**20) * attempt)


def attack_ntk_mem_mb(wildcards, attempt):
    """Spectrum, one streamed Jacobian chunk, adversarial inputs, kernel blocks."""
    n, m, d = _n(wildcards)
    adv_mb = 40 * m * d * 8 / 2**20  # all adversarial copies of the test set
    return int((3000 + 3 * n * n * 8 / 2**20 + adv_mb) * attempt)


def attack_ntk_runtime_min(wildcards, attempt):
    """Generous wall time of one kernel's attack suite (minutes), doubled on retry."""
    n, m, d = _n(wildcards)
    return int(max(30, 40 * m * n * d / 2e9) * attempt)


# ---------------------------------------------------------------- attacks helpers


def attack_pairs():
    """(dataset, arch) pairs whose kernel machine is attacked."""
    archs = config["attacks"]["architectures"] or list(config["architectures"])
    return [(ds, arch) for ds in config["kernels"]["datasets"] for arch in archs]


def get_dataset_eps(wildcards):
    """The dataset's l_inf budget (datasets.<name>.eps)."""
    return config["datasets"][wildcards.dataset]["eps"]


def get_attack_tables(name):
    """results/attacks/{dataset}/{arch}/<name> of every attacked kernel."""
    return [f"results/attacks/{ds}/{arch}/{name}" for ds, arch in attack_pairs()]


def get_example_adversarial(wildcards):
    """Adversarial inputs of the example-figure kernel on this dataset."""
    arch = config["attacks"]["example_arch"]
    return f"results/attacks/{wildcards.dataset}/{arch}/adversarial.h5"


def get_notebook_attack_table(wildcards):
    nb = config["attacks"]["notebook"]
    return f"results/attacks/{nb['dataset']}/{nb['arch']}/accuracy.csv"


def get_notebook_dataset_spec(wildcards):
    """Dataset entry of the notebook reference kernel (for the table's columns)."""
    return config["datasets"][config["attacks"]["notebook"]["dataset"]]


def get_notebook_pgd_settings(wildcards):
    """PGD steps / relative step used for the notebook reference kernel."""
    family = config["architectures"][config["attacks"]["notebook"]["arch"]]["family"]
    budget = config["attacks"]["budget"][family]
    return {
        "steps": budget["pgd_steps"] or config["attacks"]["pgd_steps"],
        "rel_step": config["attacks"]["pgd_rel_step"],
    }


def get_notebook_reference_tables(wildcards):
    """The kernel rows, plus results/tables/notebook_reference_features.csv when a
    rule of the included stages produces it (the features stage)."""
    features = "results/tables/notebook_reference_features.csv"
    produced = any(str(f) == features for r in workflow.rules for f in r.output)
    return ["results/tables/notebook_reference_kernel.csv"] + (
        [features] if produced else []
    )


# ---------------------------------------------------------------- features helpers


def feature_datasets():
    """Datasets whose eigenfeatures are scored (features.datasets with a kernel)."""
    kernels = config["kernels"]["datasets"]
    return [ds for ds in config["features"]["datasets"] if ds in kernels]


def _feature_arch(name):
    """A configured architecture, or the first one if it is not defined here."""
    archs = config["architectures"]
    return name if name in archs else next(iter(archs))


def get_features_n_eval(wildcards):
    """Evaluation points of the feature scores for this arch family (None = all)."""
    family = config["architectures"][wildcards.arch]["family"]
    return config["features"]["n_eval"][family]


def get_feature_archs(wildcards):
    """Every architecture, in config order (the order of the inputs below)."""
    return list(config["architectures"])


def get_feature_scores(wildcards):
    return [
        f"results/features/{wildcards.dataset}/{arch}/scores.h5"
        for arch in config["architectures"]
    ]


def get_feature_spectra(wildcards):
    return [
        f"results/spectra/{wildcards.dataset}/{arch}/eigh.h5"
        for arch in config["architectures"]
    ]


def get_feature_ru_scores(wildcards):
    """A dataset's kernels, or for 'main' the main_archs pair on every dataset."""
    if wildcards.selection != "main":
        datasets, archs = [wildcards.selection], list(config["architectures"])
    else:
        datasets = feature_datasets()
        archs = config["features"]["main_archs"]
        archs = [a for a in archs if a in config["architectures"]]
    return [
        f"results/features/{ds}/{arch}/scores.h5" for ds in datasets for arch in archs
    ]


def get_feature_ru_title(wildcards):
    if wildcards.selection == "main":
        return "NTK features in robustness-usefulness space (main Fig. 2)"
    return f"NTK features in robustness-usefulness space: {wildcards.selection}"


def get_feature_image_scores(wildcards):
    arch = _feature_arch(config["features"]["image_arch"])
    return f"results/features/{wildcards.dataset}/{arch}/scores.h5"


def get_topr_result(wildcards):
    arch = _feature_arch(config["features"]["topr"]["arch"])
    return f"results/features/{wildcards.dataset}/{arch}/topr.h5"


def get_all_feature_scores(wildcards):
    return [
        f"results/features/{ds}/{arch}/scores.h5"
        for ds in feature_datasets()
        for arch in config["architectures"]
    ]


def get_feature_consistency_tables(wildcards):
    datasets = feature_datasets()
    return [f"results/tables/features_consistency_{ds}.csv" for ds in datasets]


def get_all_topr_results(wildcards):
    arch = _feature_arch(config["features"]["topr"]["arch"])
    return [f"results/features/{ds}/{arch}/topr.h5" for ds in feature_datasets()]


def _notebook_features():
    """(dataset, arch) of the per-feature notebook rows, or None if not scored."""
    nb = config["features"]["notebook"]
    if nb["dataset"] in feature_datasets() and nb["arch"] in config["architectures"]:
        return nb["dataset"], nb["arch"]
    return None


def get_notebook_feature_scores(wildcards):
    ds, arch = _notebook_features()
    return f"results/features/{ds}/{arch}/scores.csv"


def get_notebook_feature_n_train(wildcards):
    return config["datasets"][_notebook_features()[0]]["n_train"]


def _features_size(wildcards):
    n, m, d = _n(wildcards)
    m = min(m, get_features_n_eval(wildcards) or m)
    k = config["features"]["top_k"] + len(config["features"]["image_indices"])
    return n, m, d, k


def score_features_mem_mb(wildcards, attempt):
    """Gram + spectrum, the (m, d, K) gradient array, one chunk of perturbed rows."""
    n, m, d, k = _features_size(wildcards)
    chunk = config["features"]["chunk"]
    mb = (4 * n * n + 3 * m * d * k + 3 * chunk * m * (n + d)) * 8 / 2**20
    return int((2500 + mb) * attempt)


def evaluate_topr_kernels_mem_mb(wildcards, attempt):
    """As score_features, with 200-feature ranking groups and the r-grid gradients."""
    n, m, d, _ = _features_size(wildcards)
    r = len(config["features"]["topr"]["grid"]) + 1
    mb = (4 * n * n + 3 * m * d * (200 + 10 * r) + 3 * 25 * m * (n + d)) * 8 / 2**20
    return int((2500 + mb) * attempt)


def features_runtime_min(wildcards, attempt):
    """Generous wall time of the feature jobs (minutes), doubled on retry."""
    n, m, d, k = _features_size(wildcards)
    return int(max(30, k * m * n * d / 1e9) * attempt)


# ---------------------------------------------------------------- transfer helpers


def _check_transfer_config():
    """Transfer-stage references: datasets with a kernel cache, a twolayer arch."""
    tr = config["transfer"]
    if tr["datasets"] and tr["arch"] not in config["architectures"]:
        raise ValueError(f"config key transfer.arch: unknown arch '{tr['arch']}'")
    if tr["datasets"] and config["architectures"][tr["arch"]]["family"] != "twolayer":
        raise ValueError("config key transfer.arch: must be of family 'twolayer'")
    for name in tr["datasets"]:
        if name not in config["kernels"]["datasets"]:
            raise ValueError(
                f"config key transfer.datasets: '{name}' has no kernel cache "
                f"(kernels.datasets: {config['kernels']['datasets']})"
            )


_check_transfer_config()


def _transfer_n(dataset):
    """(n_train used, n_test, d, r = rank bound, eval epochs) of a transfer dataset."""
    tr = config["transfer"]
    spec = config["datasets"][dataset]
    n = min(tr["n_train"] or spec["n_train"], spec["n_train"])
    d = 3072 if spec["source"] == "cifar10" else 784
    n_eval = tr["n_eval"] + len(tr["image_epochs"]) + 1
    return n, spec["n_test"], d, min(n, d), n_eval


def get_transfer_params(wildcards):
    """The transfer: section with this dataset's learning rate and eps resolved."""
    tr = config["transfer"]
    keys = ("n_train", "w_std", "dtype", "epochs", "n_eval", "align_epoch")
    keys += ("image_index", "image_epochs")
    return {
        **{key: tr[key] for key in keys},
        "lr": tr["lr_overrides"].get(wildcards.dataset, tr["lr"]),
        "eps": config["datasets"][wildcards.dataset]["eps"],
    }


def get_transfer_references(wildcards):
    tr = config["transfer"]
    return expand(
        "results/transfer/{dataset}/{arch}/ntk_reference.h5",
        dataset=tr["datasets"],
        arch=tr["arch"],
    )


def get_transfer_runs(wildcards):
    tr = config["transfer"]
    return expand(
        "results/transfer/{dataset}/{arch}/width{width}_seed{seed}.h5",
        dataset=tr["datasets"],
        arch=tr["arch"],
        width=tr["widths"],
        seed=tr["seeds"],
    )


def get_transfer_title(wildcards):
    """Figure title: the paper figure it reproduces and the setting."""
    tr = config["transfer"]
    n = _transfer_n(wildcards.dataset)[0]
    lr = tr["lr_overrides"].get(wildcards.dataset, tr["lr"])
    figure = {"cifar2": "main Fig. 1", "mnist": "supp. Fig. 1a"}.get(
        wildcards.dataset, "supp. App. C"
    )
    return f"{figure}: {wildcards.dataset}, two-layer nets vs NTK (n={n}, lr={lr:g})"


def get_transfer_image_reference(wildcards):
    tr = config["transfer"]
    return f"results/transfer/{tr['image_dataset']}/{tr['arch']}/ntk_reference.h5"


def get_transfer_image_runs(wildcards):
    """First seed of the narrowest and the widest net of the image dataset."""
    tr = config["transfer"]
    widths = sorted({min(tr["widths"]), max(tr["widths"])})
    return [
        f"results/transfer/{tr['image_dataset']}/{tr['arch']}/"
        f"width{width}_seed{tr['seeds'][0]}.h5"
        for width in widths
    ]


def compute_transfer_reference_mem_mb(wildcards, attempt):
    """Gram / eigenvectors, factored Jacobian, per-epoch loss gradients (float32)."""
    n, m, d, _, n_eval = _transfer_n(wildcards.dataset)
    n_all = config["datasets"][wildcards.dataset]["n_train"]
    mb = (3 * n_all * n_all * 8 + 2 * m * n_all * 8 + 2 * n_eval * m * d * 4) / 2**20
    return int((2000 + mb) * attempt)


def compute_transfer_reference_runtime_min(wildcards, attempt):
    """Eigendecomposition plus one Jacobian contraction per eval epoch (minutes)."""
    n, m, d, _, n_eval = _transfer_n(wildcards.dataset)
    flops = n**3 * 10 + n_eval * m * n * d * 20
    return int(max(30, flops / 1e10 / 60) * attempt)


def train_twolayer_net_mem_mb(wildcards, attempt):
    """Pre-activations and masks (n x width), first layer, reference gradients."""
    n, m, d, r, n_eval = _transfer_n(wildcards.dataset)
    width = int(wildcards.width)
    floats = 6 * n * width + 4 * width * d + 3 * width * r + n_eval * m * d + 2 * n * d
    return int((2000 + 1.5 * floats * 4 / 2**20) * attempt)


def train_twolayer_net_runtime_min(wildcards, attempt):
    """4 n r width flops per epoch at a sustained 2 TFLOP/s (minutes), doubled on retry."""
    n, _, _, r, _ = _transfer_n(wildcards.dataset)
    flops = 4 * n * r * int(wildcards.width) * config["transfer"]["epochs"]
    return int(max(30, flops / 2e12 / 60) * attempt)


# ---------------------------------------------------------------- dynamics helpers

# Parameter counts of the supp. E networks (memory estimates only).
_DYNAMICS_PARAMS = {"cnn": 824_458, "cnn_mega": 368_938}


def _check_dynamics_config():
    """Dynamics-stage references: datasets with an eps, linearised datasets."""
    dyn = config["dynamics"]
    for name in dyn["datasets"]:
        if name not in config["datasets"]:
            raise ValueError(f"config key dynamics.datasets: unknown dataset '{name}'")
    for name in dyn["linearize"]["datasets"]:
        if name not in dyn["datasets"]:
            raise ValueError(
                f"config key dynamics.linearize.datasets: '{name}' has no "
                "dynamics.datasets entry"
            )


_check_dynamics_config()


def dynamics_datasets():
    """Datasets with kernel-dynamics runs (the keys of dynamics.datasets)."""
    return list(config["dynamics"]["datasets"])


def linearized_epochs(dataset):
    """Linearisation epochs of a dataset that fall inside its training run."""
    epochs = config["dynamics"]["datasets"][dataset]["epochs"]
    return [e for e in config["dynamics"]["linearize"]["epochs"] if e <= epochs]


def get_dynamics_settings(wildcards):
    """A dataset's dynamics entry plus the shared dynamics keys, eps and seed."""
    dyn = config["dynamics"]
    shared = ("kernel_inputs", "ntk_implementation", "eval_batch")
    return {
        **{key: dyn[key] for key in shared},
        **dyn["datasets"][wildcards.dataset],
        "eps": config["datasets"][wildcards.dataset]["eps"],
        "seed": config["seed"],
    }


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


def _dynamics_size(wildcards):
    """(settings, n_train, n_eval, example passes per epoch, parameter count)."""
    s = config["dynamics"]["datasets"][wildcards.dataset]
    data = config["datasets"][wildcards.dataset]
    n = s["n_train"] or data["n_train"]
    n_eval = min(s["n_eval_train"] or n, n) + (s["n_eval_test"] or data["n_test"])
    passes = n * (s["pgd_steps"] + 1) + n_eval * (s["eval_pgd_steps"] + 2)
    return s, n, n_eval, passes, _DYNAMICS_PARAMS[s["model"]]


def train_dynamics_network_mem_mb(wildcards, attempt):
    """Data, two eNTK Jacobian tiles (tile x 10 x P float32, x3 for intermediates)
    and a few kernel matrices; doubled on retry."""
    s, n, n_eval, _, p = _dynamics_size(wildcards)
    side = 32 * 32 * 3 if s["model"] == "cnn_mega" else 28 * 28
    tile = s["ntk_block"] or s["kernel_batch"]
    mb = (3 * 2 * tile * 10 * p + 4 * (10 * s["kernel_batch"]) ** 2) * 4 / 2**20
    mb += (n + n_eval) * side * 4 / 2**20
    return int((3000 + mb) * attempt)


def train_dynamics_network_runtime_min(wildcards, attempt):
    """Wall time at ~2000 (cnn_mega) / 20000 (cnn) example-gradients per second on
    one GPU, plus the eNTK; doubled on retry."""
    s, _, _, passes, _ = _dynamics_size(wildcards)
    rate = 2000 if s["model"] == "cnn_mega" else 20000
    minutes = s["epochs"] * (passes / rate + 10 * s["kernel_batch"] / 50) / 60
    return int(max(60, 2 * minutes) * attempt)


def train_linearized_network_runtime_min(wildcards, attempt):
    """A linearised step costs about three network passes (jvp + its gradient)."""
    return 3 * train_dynamics_network_runtime_min(wildcards, attempt)


def measure_kernel_dynamics_mem_mb(wildcards, attempt):
    """Two 16-epoch blocks of flattened kernels (float64) plus one eigh; on retry x2."""
    s = config["dynamics"]["datasets"][wildcards.dataset]
    side = 10 * s["kernel_batch"]
    return int((1500 + 40 * side * side * 8 / 2**20) * attempt)


# ---------------------------------------------------------------- targets


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
    if _notebook_features():
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


def get_claims_tables(wildcards):
    """Per-stage claims tables: every results/tables/claims/<stage>.csv that a rule
    of the included stages produces (so a new stage only has to write its own)."""
    return sorted(
        str(f)
        for r in workflow.rules
        for f in r.output
        if str(f).startswith("results/tables/claims/")
    )


def get_final_targets():
    """Everything `snakemake` builds by default (rule all)."""
    claims = ["results/tables/claims.csv"] if get_claims_tables(None) else []
    return (
        data_targets()
        + kernel_targets()
        + claims
        + spectra_targets()
        + attack_targets()
        + feature_targets()
        + transfer_targets()
        + dynamics_targets()
    )
