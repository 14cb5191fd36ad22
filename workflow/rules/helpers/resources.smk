"""mem_mb / runtime of every compute rule: thin wrappers over ntkadv.sizing that
pass the job's sizes from the config; each retry doubles (sizing.on_attempt)."""

import re
from types import SimpleNamespace

from ntkadv import sizing


def _measured(name, wildcards, what, points=None):
    """Request of a kernel-half job from the rates measured by
    benchmarks/bench_scaling.py (ntkadv.sizing.measured_request); `points`: the
    evaluation points of a shard (None: the rule's whole set)."""
    return sizing.measured_request(
        name,
        what,
        config,
        wildcards.dataset,
        config["architectures"][wildcards.arch],
        dataset_input_dim(wildcards.dataset),
        points,
    )


def compute_ntk_gram_mem_mb(wildcards, attempt):
    mb = _measured("compute_ntk_gram", wildcards, "mem_mb")
    return sizing.on_attempt(mb, attempt)


def compute_ntk_gram_runtime_min(wildcards, attempt):
    mins = _measured("compute_ntk_gram", wildcards, "runtime")
    return sizing.on_attempt(mins, attempt)


def compute_ntk_input_jacobian_mem_mb(wildcards, attempt):
    n, _, d = dataset_sizes(wildcards.dataset)
    block = config["kernels"]["block_size"]
    return sizing.on_attempt(sizing.jacobian_mem_mb(n, d, block), attempt)


def compute_ntk_input_jacobian_disk_mb(wildcards, attempt):
    n, m, d = dataset_sizes(wildcards.dataset)
    family = arch_family(wildcards.arch)
    return sizing.on_attempt(sizing.jacobian_disk_mb(n, m, d, family), 1)


def kernel_runtime_min(wildcards, attempt):
    return sizing.on_attempt(
        sizing.kernel_runtime_min(*dataset_sizes(wildcards.dataset)), attempt
    )


def eigendecompose_gram_mem_mb(wildcards, attempt):
    mb = _measured("eigendecompose_gram", wildcards, "mem_mb")
    return sizing.on_attempt(mb, attempt)


def _jacobian_tile_mb(wildcards):
    """A dense-family consumer's gradient tile (ImplicitJacobian), 0 if factored."""
    n, _, d = dataset_sizes(wildcards.dataset)
    block = config["kernels"]["block_size"]
    return sizing.jacobian_tile_mb(n, d, block, arch_family(wildcards.arch))


def eps_passes(wildcards):
    """`sizing.eps_passes` of the job's dataset."""
    return sizing.eps_passes(config, wildcards.dataset)


def eigendecompose_gram_runtime_min(wildcards, attempt):
    mins = _measured("eigendecompose_gram", wildcards, "runtime")
    return sizing.on_attempt(mins, attempt)


def _points_mem_mb(rule_name, wildcards, points=None):
    """Memory request of a point-sharded rule's job at `points` evaluation points."""
    return _measured(rule_name, wildcards, "mem_mb", points) + _jacobian_tile_mb(
        wildcards
    )


def _points_runtime_min(rule_name, wildcards, points=None):
    """First-attempt runtime of a point-sharded rule's job (attack_ntk,
    score_features) at `points` evaluation points (None: the whole job)."""
    return sizing.point_job_runtime_min(
        rule_name,
        config,
        wildcards.dataset,
        config["architectures"][wildcards.arch],
        dataset_input_dim(wildcards.dataset),
        points,
    )


def max_job_min():
    """config resources.max_job_min: the longest first-attempt runtime request."""
    return config["resources"]["max_job_min"]


def point_shards(rule_name, wildcards):
    """Evaluation-point ranges [(i0, i1), ...] of the shards of this kernel's
    `rule_name` job (ntkadv.sizing.point_shards): [(0, m)] when its request fits
    resources.max_job_min."""
    return sizing.point_shards(
        rule_name,
        config,
        wildcards.dataset,
        config["architectures"][wildcards.arch],
        dataset_input_dim(wildcards.dataset),
    )


def sharded_kernels(rule_name, pairs):
    """The (dataset, arch) pairs of `pairs` whose `rule_name` job runs in shards."""
    return [
        (ds, arch)
        for ds, arch in pairs
        if len(point_shards(rule_name, SimpleNamespace(dataset=ds, arch=arch))) > 1
    ]


def kernel_constraint(pairs):
    """Constraint of the {dataset} wildcard that matches exactly the (dataset,
    arch) pairs given in a ``{dataset}/{arch}/`` path (each name followed by its
    arch, a lookahead); a pattern that matches nothing when there are none."""
    alts = [f"{re.escape(ds)}(?=/{re.escape(arch)}/)" for ds, arch in pairs]
    return "|".join(alts) or "(?!)"


def _shard_points(rule_name, wildcards):
    i0, i1 = point_shards(rule_name, wildcards)[int(wildcards.shard)]
    return i1 - i0


def attack_ntk_mem_mb(wildcards, attempt):
    return sizing.on_attempt(_points_mem_mb("attack_ntk", wildcards), attempt)


def attack_ntk_runtime_min(wildcards, attempt):
    mins = _points_runtime_min("attack_ntk", wildcards)
    return sizing.on_attempt(mins, attempt)


def attack_ntk_shard_mem_mb(wildcards, attempt):
    points = _shard_points("attack_ntk", wildcards)
    return sizing.on_attempt(_points_mem_mb("attack_ntk", wildcards, points), attempt)


def attack_ntk_shard_runtime_min(wildcards, attempt):
    points = _shard_points("attack_ntk", wildcards)
    mins = _points_runtime_min("attack_ntk", wildcards, points)
    return sizing.on_attempt(mins, attempt)


def merge_attack_shards_mem_mb(wildcards, attempt):
    family = arch_family(wildcards.arch)
    d = dataset_input_dim(wildcards.dataset)
    sizes = sizing.work_sizes("attack_ntk", family, config, wildcards.dataset, d)
    mb = sizing.attack_merge_mem_mb(sizes["m"], d, sizes["closed"], sizes["pgd_rows"])
    return sizing.on_attempt(mb, attempt)


def score_features_mem_mb(wildcards, attempt):
    return sizing.on_attempt(_points_mem_mb("score_features", wildcards), attempt)


def score_features_shard_mem_mb(wildcards, attempt):
    points = _shard_points("score_features", wildcards)
    mb = _points_mem_mb("score_features", wildcards, points)
    return sizing.on_attempt(mb, attempt)


def score_features_shard_runtime_min(wildcards, attempt):
    points = _shard_points("score_features", wildcards)
    mins = _points_runtime_min("score_features", wildcards, points)
    return sizing.on_attempt(mins, attempt)


def merge_feature_shards_mem_mb(wildcards, attempt):
    family = arch_family(wildcards.arch)
    d = dataset_input_dim(wildcards.dataset)
    s = sizing.work_sizes("score_features", family, config, wildcards.dataset, d)
    mb = sizing.features_merge_mem_mb(s["n"], s["m"], s["k"], d, eps_passes(wildcards))
    return sizing.on_attempt(mb, attempt)


def score_features_runtime_min(wildcards, attempt):
    mins = _points_runtime_min("score_features", wildcards)
    return sizing.on_attempt(mins, attempt)


def evaluate_topr_kernels_mem_mb(wildcards, attempt):
    mb = _measured("evaluate_topr_kernels", wildcards, "mem_mb")
    return sizing.on_attempt(mb + _jacobian_tile_mb(wildcards), attempt)


def evaluate_topr_kernels_runtime_min(wildcards, attempt):
    mins = _measured("evaluate_topr_kernels", wildcards, "runtime")
    return sizing.on_attempt(mins * eps_passes(wildcards), attempt)


def compute_transfer_reference_mem_mb(wildcards, attempt):
    n, m, d, _, n_eval = transfer_sizes(wildcards.dataset)
    if config["transfer"]["solver"] == "iterative":
        classes = len(config["datasets"][wildcards.dataset]["classes"])
        k = classes if classes > 2 else 1  # binary tasks: one output
        mb = sizing.matrix_free_reference_mem_mb(n, m, d, n_eval, k)
        return sizing.on_attempt(mb, attempt)
    n_all = config["datasets"][wildcards.dataset]["n_train"]
    mb = sizing.transfer_reference_mem_mb(n_all, m, d, n_eval)
    return sizing.on_attempt(mb, attempt)


def compute_transfer_reference_runtime_min(wildcards, attempt):
    n, m, d, _, n_eval = transfer_sizes(wildcards.dataset)
    if config["transfer"]["solver"] == "iterative":
        mins = sizing.matrix_free_reference_runtime_min(n, m, d, n_eval)
    else:
        mins = sizing.transfer_reference_runtime_min(n, m, d, n_eval)
    return sizing.on_attempt(mins, attempt)


def train_twolayer_net_mem_mb(wildcards, attempt):
    n, m, d, r, n_eval = transfer_sizes(wildcards.dataset)
    mb = sizing.twolayer_mem_mb(n, m, d, r, n_eval, int(wildcards.width))
    return sizing.on_attempt(mb, attempt)


def train_twolayer_net_runtime_min(wildcards, attempt):
    n, _, _, r, _ = transfer_sizes(wildcards.dataset)
    epochs = config["transfer"]["epochs"]
    mins = sizing.twolayer_runtime_min(n, r, int(wildcards.width), epochs)
    return sizing.on_attempt(mins, attempt)


def _dynamics_size(wildcards):
    """(settings, n_train, n_eval, example passes per epoch)."""
    s = config["dynamics"]["datasets"][wildcards.dataset]
    n_all, m_all, _ = dataset_sizes(wildcards.dataset)
    n = s["n_train"] or n_all
    n_eval = min(s["n_eval_train"] or n, n) + (s["n_eval_test"] or m_all)
    passes = n * (s["pgd_steps"] + 1) + n_eval * (s["eval_pgd_steps"] + 2)
    return s, n, n_eval, passes


# Checkpointed training (train_dynamics_network, train_linearized_network): SGD
# over epochs cannot be split, but each job resumes from its last completed epoch
# (ntkadv.dynamics.checkpoint), so a job longer than resources.max_job_min requests
# that limit on every attempt and gets the retries to finish (sizing.
# resumable_runtime_min, resumable_retries); its memory doubles once at most.


def _dynamics_runtime(wildcards):
    s, _, _, passes = _dynamics_size(wildcards)
    return sizing.dynamics_runtime_min(
        s["model"], s["epochs"], passes, s["kernel_batch"]
    )


def _linearized_runtime(wildcards):
    s, _, _, passes = _dynamics_size(wildcards)
    epochs = s["epochs"] - int(wildcards.lin_epoch)  # branches off the PGD run
    return sizing.dynamics_runtime_min(s["model"], epochs, passes, 0, linear=True)


def resumable_retries(rule_name):
    """Retries of the checkpointed training rule named `rule_name`, or None."""
    if rule_name == "train_dynamics_network":
        jobs = [SimpleNamespace(dataset=ds) for ds in dynamics_datasets()]
        minutes = [_dynamics_runtime(wc) for wc in jobs]
    else:
        jobs = [
            SimpleNamespace(dataset=ds, lin_epoch=e)
            for ds in dynamics_datasets()
            for e in linearized_epochs(ds)
        ]
        minutes = [_linearized_runtime(wc) for wc in jobs]
    return sizing.resumable_retries(minutes, max_job_min())


def train_dynamics_network_mem_mb(wildcards, attempt):
    s, n, n_eval, _ = _dynamics_size(wildcards)
    source = dataset_source(wildcards.dataset)
    mb = sizing.dynamics_mem_mb(
        s["model"],
        source,
        n,
        n_eval,
        s["kernel_batch"],
        s["ntk_block"],
        config["dynamics"]["ntk_implementation"],
    )
    return sizing.on_attempt(mb, min(attempt, 2))


def train_dynamics_network_runtime_min(wildcards, attempt):
    mins = _dynamics_runtime(wildcards)
    return sizing.resumable_runtime_min(mins, attempt, max_job_min())


def train_dynamics_network_disk_mb(wildcards, attempt):
    s = config["dynamics"]["datasets"][wildcards.dataset]
    return sizing.on_attempt(sizing.dynamics_disk_mb(s["epochs"], s["kernel_batch"]), 1)


def train_linearized_network_runtime_min(wildcards, attempt):
    mins = _linearized_runtime(wildcards)
    return sizing.resumable_runtime_min(mins, attempt, max_job_min())


def measure_kernel_dynamics_mem_mb(wildcards, attempt):
    s = config["dynamics"]["datasets"][wildcards.dataset]
    return sizing.on_attempt(sizing.measures_mem_mb(s["kernel_batch"]), attempt)
