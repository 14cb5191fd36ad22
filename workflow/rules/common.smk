"""Validation, wildcard constraints, target and resource functions. No rules here."""


import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# the library (scripts/ntkadv) is importable from the workflow too
sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))


validate(config, schema="../schemas/config.schema.yaml")


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
    """One block of per-pair gradients (block x n x d float32), doubled on retry."""
    n, _, d = _n(wildcards)
    block = config["kernels"]["block_size"]
    return int((2000 + 3 * block * n * d * 4 / 2**20) * attempt)


def kernel_runtime_min(wildcards, attempt):
    """Generous wall time for the kernel jobs (minutes), doubled on retry."""
    n, m, d = _n(wildcards)
    return int(max(30, (n + m) * n * d / 2e9) * attempt)


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
    return data_targets() + kernel_targets() + claims
