"""Inputs and params of the transfer stage (no rules)."""


def transfer_lr(dataset):
    """The GD learning rate of a dataset (transfer.lr or its lr_overrides entry)."""
    tr = config["transfer"]
    return tr["lr_overrides"].get(dataset, tr["lr"])


def transfer_sizes(dataset):
    """(n_train used, n_test, d, r = rank bound, eval epochs) of a transfer dataset."""
    tr = config["transfer"]
    n_all, m, d = dataset_sizes(dataset)
    n = min(tr["n_train"] or n_all, n_all)
    n_eval = tr["n_eval"] + len(tr["image_epochs"]) + 1
    return n, m, d, min(n, d), n_eval


def transfer_gram_input(wildcards):
    """gram.h5 of the dense NTK reference; none with transfer.solver: iterative (its
    kernel blocks are recomputed from the data: no n x n Gram, 28.8 GB at 60K)."""
    if config["transfer"]["solver"] == "iterative":
        return []
    return "results/ntk/{dataset}/{arch}/gram.h5".format(**wildcards)


def transfer_eigh_input(wildcards):
    """eigh.h5 of the dense NTK reference; none with transfer.solver: iterative."""
    if config["transfer"]["solver"] == "iterative":
        return []
    return "results/spectra/{dataset}/{arch}/eigh.h5".format(**wildcards)


def transfer_image_index(dataset):
    """transfer.image_index on the image dataset, None elsewhere (no image kept)."""
    tr = config["transfer"]
    return tr["image_index"] if dataset == tr["image_dataset"] else None


def transfer_reference_settings(wildcards):
    """ntkadv.transfer.task.ReferenceSettings of rule compute_transfer_reference."""
    tr = config["transfer"]
    keys = ("n_train", "epochs", "n_eval", "align_epoch", "image_epochs")
    if tr["solver"] != "dense":  # dense: the params (and the job hash) stay as before
        keys += ("solver", "solver_tol")
    return canonical(
        {
            **pick(tr, *keys),
            "arch": config["architectures"][wildcards.arch],
            "image_index": transfer_image_index(wildcards.dataset),
            "lr": transfer_lr(wildcards.dataset),
            "eps": config["datasets"][wildcards.dataset]["eps"],
            "seed": config["seed"],
            "x64": config["kernels"]["x64"],
        }
    )


def twolayer_net_settings(wildcards):
    """ntkadv.transfer.task.NetSettings of rule train_twolayer_net."""
    tr = config["transfer"]
    return canonical(
        {
            **pick(tr, "w_std", "dtype", "align_epoch"),
            "image_index": transfer_image_index(wildcards.dataset),
            "lr": transfer_lr(wildcards.dataset),
            "eps": config["datasets"][wildcards.dataset]["eps"],
            "x64": config["kernels"]["x64"],
        }
    )


def transfer_claims_settings(wildcards):
    """ntkadv.transfer.summary.TransferClaimsSettings of rule summarize_transfer_claims."""
    return canonical(
        {
            "criteria": config["transfer"]["criteria"],
            "align_epoch": config["transfer"]["align_epoch"],
            "seed": config["seed"],
        }
    )


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


def transfer_curves_settings(wildcards):
    """ntkadv.plotting.transfer.CurvesSettings of rule plot_transfer_curves."""
    return canonical(
        {
            "title": get_transfer_title(wildcards),
            "align_epoch": config["transfer"]["align_epoch"],
        }
    )


def get_transfer_title(wildcards):
    """Figure title: the paper figure it reproduces and the setting."""
    n = transfer_sizes(wildcards.dataset)[0]
    lr = transfer_lr(wildcards.dataset)
    spec = config["datasets"][wildcards.dataset]
    figure = "supp. App. C"
    if spec["source"] == "cifar10" and len(spec["classes"]) == 2:
        figure = "main Fig. 1"
    elif spec["source"] == "mnist":
        figure = "supp. Fig. 1a"
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
