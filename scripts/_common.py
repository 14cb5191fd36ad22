"""The one script-entry helper of the rule scripts (Snakemake glue, no math).

Every rule script starts with ``log = start(snakemake, ...)``: the job's stderr and
`logging` go to its log file; compute jobs pin XLA's CPU thread pool to the job's
threads and set jax's float64 flag before jax is imported. Scripts then build the
typed settings of their task (`settings`) and call one library function.
"""

from __future__ import annotations

import importlib.abc
import json
import logging
import os
import sys
import typing
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def setup_logging(log_path: str) -> logging.Logger:
    """Send stderr and the `logging` module to the rule's log file."""
    os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
    handle = open(log_path, "w", buffering=1)  # noqa: SIM115 - lives for the process
    sys.stderr = handle
    logging.basicConfig(
        stream=handle,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    return logging.getLogger("ntkadv")


def pin_threads(threads: int) -> None:
    """Limit XLA:CPU and BLAS to the job's threads (call before importing jax).

    Every JAX compute rule declares one thread (helpers/checks.smk COMPUTE_THREADS),
    so two jobs share the 2-core development machine without oversubscribing it.
    jax 0.4.35 sizes its CPU thread pool from ``PJRT_NPROC`` (read when the backend
    starts); ``--xla_cpu_multi_thread_eigen=false`` is ignored by its CPU runtime
    (measured: CPU time / wall time 1.95 unpinned, 1.00 with PJRT_NPROC=1;
    tests/unit/test_package.py checks the effect).
    """
    if "jax" in sys.modules:
        return
    # XLA:CPU's legacy (non-thunk) runtime: training / evaluation steps of the
    # supp. E CNNs 1.35-1.71x faster, kernel blocks ~1.1x (benchmarks/
    # bench_dynamics_epoch.py, measured on jax 0.4.35)
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_use_thunk_runtime" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_use_thunk_runtime=false".strip()
    for var in ("PJRT_NPROC", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)


#: jax's persistent compilation cache of the jax jobs, relative to the working
#: directory (override with NTKADV_JAX_CACHE; empty = off). Jobs with the same
#: shapes (seeds, regimes, kernels of one family) then compile each program once per
#: run: a dynamics run's XLA compilations take 2-8 s, an eNTK/CNN step program
#: 6.9 s cold vs 1.8 s from the cache (measured here, jax 0.4.35 CPU).
JAX_CACHE = ".snakemake/jax-cache"


def enable_compile_cache() -> None:
    """Point jax's persistent compilation cache at `JAX_CACHE` (after import jax)."""
    import jax

    path = os.environ.get("NTKADV_JAX_CACHE", JAX_CACHE)
    if not path:
        return
    jax.config.update("jax_compilation_cache_dir", os.path.abspath(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


class EnvImportGuard(importlib.abc.MetaPathFinder):
    """Refuse top-level modules that the rule's conda env does not provide.

    The project environment has every package; a cluster job runs in the rule's own
    env (envs/*.yaml). With ``NTKADV_IMPORT_GUARD=<json>`` (written by
    tests/workflow/test_envs.py: rule -> {env, blocked modules}) every job of a test
    run fails on the first import its env could not satisfy.
    """

    def __init__(self, rule: str, env: str, blocked: set[str]):
        self.rule, self.env, self.blocked = rule, env, blocked

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.partition(".")[0] in self.blocked:
            raise ModuleNotFoundError(
                f"rule {self.rule} imports '{name}', which its conda env "
                f"envs/{self.env}.yaml does not provide",
                name=name,
            )
        return None


def guard_imports(rule: str) -> None:
    """Install `EnvImportGuard` for `rule` if NTKADV_IMPORT_GUARD names a map."""
    path = os.environ.get("NTKADV_IMPORT_GUARD")
    if not path:
        return
    with open(path) as f:
        entry = json.load(f)[rule]
    sys.meta_path.insert(0, EnvImportGuard(rule, entry["env"], set(entry["blocked"])))


def report_errors_on_console(rule: str) -> None:
    """An uncaught error goes to the log with its traceback AND, as one line naming
    the rule (and for OSErrors such as a full disk, the path), to the console — the
    log itself may be on the disk that just filled up."""

    def hook(kind, err, tb) -> None:
        import traceback

        try:
            traceback.print_exception(kind, err, tb)  # sys.stderr is the log
            sys.stderr.flush()
        except OSError:
            pass
        where = (
            f" [{err.filename}]" if isinstance(err, OSError) and err.filename else ""
        )
        line = str(err).splitlines()[0] if str(err) else ""
        print(f"rule {rule}: {kind.__name__}: {line}{where}", file=sys.__stderr__)

    sys.excepthook = hook


def peak_rss_mb() -> float:
    """Peak RSS of this process's own memory (MB) and of its largest waited-for child.

    Linux's ``getrusage(RUSAGE_SELF).ru_maxrss`` keeps the high-water mark of the
    process image before ``exec``: a job forked from a large parent (snakemake, or
    pytest at 4.6 GB) would report the parent's RSS at the fork. ``VmHWM`` in
    /proc/self/status is the peak of the current image only; elsewhere ru_maxrss is
    the fallback.
    """
    import resource

    from ntkadv.timing import proc_status_kb

    own_kb = proc_status_kb("VmHWM")
    if own_kb is None:
        own_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    return max(own_kb, kids_kb) / 1024


def log_peak_usage(log: logging.Logger) -> None:
    """At exit, log the job's exact peak RSS (`peak_rss_mb`) and CPU time (getrusage
    of the process and its waited-for children). Snakemake's benchmark TSV samples
    RSS every 0.5 s for the first 15 s and every 30 s after, so its max_rss misses
    short peaks."""
    import atexit
    import resource

    def report() -> None:
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
        try:
            log.info("peak RSS %.0f MB, CPU time %.1f s", peak_rss_mb(), cpu)
        except (OSError, ValueError):  # log file closed or its disk full
            pass

    atexit.register(report)


def start(smk: Any, *, jax: bool = False, x64: bool | None = None) -> logging.Logger:
    """Log to the job's log file; for jax jobs pin threads and set float64.

    Args:
        smk: the `snakemake` object of the script.
        jax: the job computes with jax (pin XLA to ``smk.threads``).
        x64: if not None, jax's ``jax_enable_x64`` flag.
    """
    log = setup_logging(smk.log[0])
    log_peak_usage(log)
    report_errors_on_console(smk.rule)
    from ntkadv import interrupts  # Ctrl-C / SIGTERM: stop now, no orphan, no temp

    interrupts.install(log)
    guard_imports(smk.rule)
    if jax:
        pin_threads(smk.threads)
        enable_compile_cache()
    if x64 is not None:
        import jax as jax_module

        jax_module.config.update("jax_enable_x64", bool(x64))
    return log


def call(smk: Any, task: Callable[..., None], log: logging.Logger) -> None:
    """Run a rule's task with the one entry convention of every rule script.

    A rule ``<rule_name>`` runs ``ntkadv.<stage>.task.<rule_name>`` (compute),
    ``ntkadv.<stage>.summary.<rule_name>`` (tables, claims) or
    ``ntkadv.plotting.<stage>.<rule_name>`` (figures), each with the signature
    ``(inputs, outputs, settings, ids, log)``:

    - inputs / outputs: the rule's named files (``str``, or ``list[str]`` for a
      list), without the ``code`` inputs that only drive reruns; tables, pages
      and figures are written to temporaries moved into place when the task
      returns (`ntkadv.atomic`), HDF5 files by `ntkadv.h5io` itself;
    - settings: the task's typed settings (the annotation of its ``settings``
      parameter, a dataclass) built from ``params.settings``; ``None`` when the
      annotation is ``None`` (the rule consumes no params);
    - ids: every wildcard of the job, as strings;
    - log: the job's logger (`start`).
    """
    kind = typing.get_type_hints(task).get("settings")
    if kind is None or kind is type(None):
        typed = None
    else:
        typed = settings(kind, smk.params.settings)
    from ntkadv import interrupts
    from ntkadv.atomic import atomic_outputs

    # a stop signal ends the job as a stop even if library code converted its
    # SystemExit into another exception (interrupts.stop_wins)
    with interrupts.stop_wins(), atomic_outputs(files(smk.output)) as outputs:
        task(files(smk.input), outputs, typed, dict_ids(smk), log)


def files(named: Any) -> dict[str, Any]:
    """A Snakemake input/output object as {name: path or list of paths}."""
    return {
        name: value if isinstance(value, str) else [str(v) for v in value]
        for name, value in named.items()
        if name != "code"
    }


def dict_ids(smk: Any) -> dict[str, str]:
    """Every wildcard of the job, as strings."""
    return {name: str(value) for name, value in smk.wildcards.items()}


def settings(cls: type, params: Any) -> Any:
    """Typed settings of a task from a params mapping (ntkadv.config.settings_from)."""
    from ntkadv.config import settings_from

    return settings_from(cls, dict(params), cls.__name__)


def ids(smk: Any, *names: str) -> dict[str, str]:
    """The job's wildcards `names` (default dataset and arch) as a dict."""
    return {n: str(smk.wildcards[n]) for n in names or ("dataset", "arch")}
