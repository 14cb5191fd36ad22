"""Inputs and params of the data, kernel and spectra stages (no rules)."""


def dataset_source(dataset):
    """The source of a configured dataset (a public source of the registry
    ntkadv.data.sources.SOURCES, or 'file')."""
    return config["datasets"][dataset]["source"]


def public_source_pattern():
    """The download rule's {source} constraint: the registry's public sources."""
    from ntkadv.data.sources import source_pattern

    return source_pattern()


def dataset_sizes(dataset):
    """(n_train, n_test, d) of a configured dataset."""
    spec = config["datasets"][dataset]
    return spec["n_train"], spec["n_test"], dataset_input_dim(dataset)


def extra_eps_param(dataset):
    """{"extra_eps": datasets.<d>.extra_eps} when the dataset names extra budgets,
    else {} (the key left out: the paper-ε jobs' params, and so their outputs,
    stay exactly as without the feature)."""
    extra = config["datasets"][dataset].get("extra_eps") or []
    return {"extra_eps": list(extra)} if extra else {}


def arch_family(arch):
    return config["architectures"][arch]["family"]


def search_dirs():
    """data.search_dirs, relative entries resolved against the project directory."""
    from pathlib import Path

    base = Path(workflow.basedir)
    return [str(base / d) for d in config["data"]["search_dirs"]]


def get_raw_inputs(wildcards):
    """Raw files of the dataset's source: local copies if every file is found in
    data.search_dirs (no download job), else the download rule's folder."""
    from ntkadv.data import locate_raw

    source = dataset_source(wildcards.dataset)
    if source == "file":  # the user's own arrays (helpers/sources.smk)
        return [config["datasets"][wildcards.dataset]["path"]]
    found = locate_raw(source, search_dirs())
    missing = [rel for rel, path in found.items() if path is None]
    if not missing:
        # content pinned by digest (ntkadv.data.sources) and checked by every run of
        # prepare_dataset: a re-copied file's new mtime must not rerun the workflow
        return [ancient(str(path)) for path in found.values()]
    if not config["data"]["download"]:
        raise WorkflowError(
            f"raw {source} file(s) {missing} not found in data.search_dirs "
            f"{config['data']['search_dirs']} and data.download is false"
        )
    return [f"results/raw/{source}"]


def prepare_dataset_params(wildcards):
    """ntkadv.data.task.DatasetSettings of prepare_dataset: the subset and the seed."""
    spec = config["datasets"][wildcards.dataset]
    keys = ("source", "classes", "n_train", "n_test", "selection", "permute_labels")
    keys += ("path",) if spec["source"] == "file" else ()
    return canonical({**pick(spec, *keys), "seed": config["seed"]})


def kernel_settings(wildcards):
    """ntkadv.kernels.task.KernelSettings of a kernel-cache job."""
    return canonical(
        {
            "arch": config["architectures"][wildcards.arch],
            "block_size": config["kernels"]["block_size"],
            "x64": config["kernels"]["x64"],
        }
    )
