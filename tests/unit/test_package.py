"""The package's import behaviour: a lazy public API (ntkadv/__init__) and
neural-tangents without its TensorFlow interop (ntkadv.compat); script glue."""

import importlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ntkadv

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
PROBE = (
    "import sys\n"
    "from ntkadv import compat\n"
    "print(compat.{call}() is not None)\n"
    "import neural_tangents as nt\n"
    "print('tensorflow' in sys.modules, callable(nt.stax.Dense), callable(nt.batch))\n"
    "try:\n"
    "    nt.experimental.empirical_ntk_fn_tf\n"
    "except AttributeError as e:\n"
    "    print('NTKADV_LOAD_TENSORFLOW' in str(e))\n"
)
OPT_OUT_PROBE = (
    "from ntkadv import compat\n"
    "print(compat.skip_tensorflow_interop())\n"
    "try:\n"
    "    import neural_tangents\n"
    "except ImportError as e:\n"
    "    print('ImportError', e.name)\n"
)


def _python(code: str, env: dict[str, str]) -> list[str]:
    """stdout lines of `code` run by a fresh interpreter in scripts/ with `env`."""
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=SCRIPTS,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.splitlines()


def _words(code: str, **env) -> list[str]:
    """Words printed by `code` in a fresh interpreter (this environment + `env`)."""
    out = _python(code, {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env})
    return " ".join(out).split()


# ---------------------------------------------------------------- ntkadv/__init__


@pytest.mark.parametrize("module", ["ntkadv", "ntkadv.sizing", "ntkadv.config"])
def test_importing_the_package_loads_neither_jax_nor_the_placeholder(module):
    out = _words(
        f"import sys, {module}\n"
        "print('jax' in sys.modules, 'neural_tangents.experimental' in sys.modules)\n"
    )
    assert out == ["False", "False"]


@pytest.mark.parametrize("name", ntkadv.__all__)
def test_every_public_name_resolves(name):
    value = getattr(ntkadv, name)
    assert name in dir(ntkadv)
    if name in ntkadv._SUBPACKAGES:
        assert value is importlib.import_module(f"ntkadv.{name}")
    else:
        assert callable(value)
        assert value is getattr(importlib.import_module(ntkadv._API[name]), name)


def test_unknown_attribute_raises():
    with pytest.raises(AttributeError, match="no_such_name"):
        ntkadv.no_such_name  # noqa: B018


# ---------------------------------------------------------------- ntkadv.compat


@pytest.mark.parametrize("call", ["skip_tensorflow_interop", "import_neural_tangents"])
def test_neural_tangents_without_tensorflow(call):
    """TensorFlow is not installed; neural-tangents imports, its interop is stubbed."""
    assert _words(PROBE.format(call=call)) == ["True", "False", "True", "True", "True"]


def test_opt_out_really_disables_the_placeholder():
    """NTKADV_LOAD_TENSORFLOW=1 imports the real interop, which needs TensorFlow."""
    assert _words(OPT_OUT_PROBE, NTKADV_LOAD_TENSORFLOW="1") == [
        "False",
        "ImportError",
        "tensorflow",
    ]


def test_placeholder_is_in_place_in_this_session():
    """tests/conftest.py registered it before anything imported neural_tangents."""
    from ntkadv import compat

    assert sys.modules[compat.EXPERIMENTAL].__ntkadv_placeholder__
    assert compat.skip_tensorflow_interop() is True  # idempotent


# ---------------------------------------------------------------- scripts/_common


def test_one_thread_jobs_really_run_on_one_core():
    """The effect, not the flag: a jax job pinned by _common.pin_threads(1) spends
    at most ~1 CPU-second per wall-second on a large matmul (unpinned jax 0.4.35
    uses every core: 1.95 on the 2-core development machine)."""
    probe = (
        "import os, time, _common\n"
        "_common.pin_threads(1)\n"
        "import jax, jax.numpy as jnp\n"
        "x = jnp.ones((1200, 1200)); f = jax.jit(lambda a: (a @ a).sum())\n"
        "f(x).block_until_ready()\n"
        "w, c = time.perf_counter(), time.process_time()\n"
        "for _ in range(15): f(x).block_until_ready()\n"
        "print((time.process_time() - c) / (time.perf_counter() - w))\n"
        "print(os.environ['PJRT_NPROC'], os.environ['OMP_NUM_THREADS'])\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PJRT_NPROC",)}
    ratio, pins = _python(probe, env)
    assert float(ratio) < 1.3, f"CPU time / wall time {ratio}: the pin has no effect"
    assert pins.split() == ["1", "1"]


def test_jax_jobs_share_a_persistent_compilation_cache(tmp_path):
    """enable_compile_cache: a compiled program lands in the cache directory, and
    a second process finds it there (a cache hit, counted by jax's own event)."""
    cache = tmp_path / "cache"
    probe = (
        "import os, _common\n"
        "_common.pin_threads(1)\n"
        "import jax, jax.numpy as jnp\n"
        "from jax._src import monitoring\n"
        "hits = []\n"
        "monitoring.register_event_listener("
        "lambda e, **k: hits.append(e) if 'cache_hits' in e else None)\n"
        "_common.enable_compile_cache()\n"
        "jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)\n"
        "def f(x):\n"
        "    for _ in range(30): x = jnp.sin(x) @ x\n"
        "    return x\n"
        "jax.jit(f)(jnp.ones((8, 8))).block_until_ready()\n"
        "print(len(hits))\n"
    )
    env = {**os.environ, "NTKADV_JAX_CACHE": str(cache)}
    first = _python(probe, env)[0]
    assert list(cache.glob("jit_f-*")), "nothing was written to the cache"
    second = _python(probe, env)[0]
    assert int(first) == 0 and int(second) >= 1


def test_uncaught_errors_reach_the_console_in_one_line(tmp_path):
    """A job's error is one console line naming the rule and the path (the full
    traceback goes to the log), e.g. a disk that cannot hold an output."""
    code = (
        "import _common, types\n"
        f"smk = types.SimpleNamespace(log=[{str(tmp_path / 'job.log')!r}], rule='r')\n"
        "_common.start(smk)\n"
        "from ntkadv import h5io\n"
        f"h5io.check_free_space({str(tmp_path / 'big.h5')!r}, 2**60)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=SCRIPTS,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert (
        lines[0].startswith("rule r: OSError:")
        and "no space left for big.h5" in lines[0]
    )
    assert str(tmp_path) in lines[0]
    assert "Traceback" in (tmp_path / "job.log").read_text()
    assert not (tmp_path / "big.h5").exists()


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="Linux /proc")
def test_proc_status_reads_this_process_memory():
    """VmRSS agrees with /proc/self/statm's resident pages; VmHWM rises by a touched
    256 MiB array and stays there after it is freed."""
    from ntkadv.timing import proc_status_kb

    page_kb = os.sysconf("SC_PAGE_SIZE") // 1024
    with open("/proc/self/statm") as fh:
        statm_kb = int(fh.read().split()[1]) * page_kb
    assert abs(proc_status_kb("VmRSS") - statm_kb) < 4096  # 4 MB of drift
    a = np.ones(32 * 2**20)  # 256 MiB, touched
    peak_kb = proc_status_kb("VmHWM")
    assert peak_kb >= proc_status_kb("VmRSS") >= a.nbytes // 1024
    del a
    assert proc_status_kb("VmHWM") - proc_status_kb("VmRSS") > 200 * 1024
    assert proc_status_kb("VmHWM") >= peak_kb - 1024  # counters lag by a few pages
    assert proc_status_kb("NoSuchField") is None


def test_jobs_log_their_exact_peak_memory(tmp_path):
    """_common.start logs the job's own peak RSS at exit: a 400 MB array held for a
    moment (shorter than the 0.5 s of snakemake's RSS sampling) is in it, and the
    RSS of the process that started the job is not (this test process holds 1 GiB
    more when it forks the job; Linux's ru_maxrss would report it)."""
    ballast = np.ones(128 * 2**20)  # 1 GiB in the parent at the fork
    log = tmp_path / "job.log"
    code = (
        "import _common, types, numpy as np\n"
        f"smk = types.SimpleNamespace(log=[{str(log)!r}], rule='r')\n"
        "_common.start(smk)\n"
        "a = np.ones(50 * 2**20); del a\n"  # 400 MiB, touched, freed at once
    )
    subprocess.run([sys.executable, "-c", code], cwd=SCRIPTS, check=True)
    (line,) = [ln for ln in log.read_text().splitlines() if "peak RSS" in ln]
    peak_mb = float(line.split("peak RSS ")[1].split(" MB")[0])
    assert 400 <= peak_mb < 900, line
    del ballast


def test_one_version_everywhere(repo):
    """ntkadv.__version__ (read where the package is not installed: the cluster envs
    import it from scripts/), pyproject.toml and CITATION.cff name one version."""
    import tomllib

    import yaml

    import ntkadv

    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    citation = yaml.safe_load((repo / "CITATION.cff").read_text())
    assert ntkadv.__version__ == project["version"] == str(citation["version"])
