"""Importing ntkadv keeps neural-tangents from loading TensorFlow (ntkadv/__init__)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
PROBE = (
    "import sys, ntkadv.kernels as k, neural_tangents as nt\n"
    "print('tensorflow' in sys.modules, callable(nt.stax.Dense), callable(nt.batch))\n"
    "try:\n"
    "    nt.experimental.empirical_ntk_fn_tf\n"
    "except AttributeError as e:\n"
    "    print('NTKADV_LOAD_TENSORFLOW' in str(e))\n"
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


def _probe(**env) -> list[str]:
    out = _python(PROBE, {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env})
    return " ".join(out).split()


def test_importing_ntkadv_skips_tensorflow_but_keeps_neural_tangents():
    assert _probe() == ["False", "True", "True", "True"]


@pytest.mark.slow
def test_opt_out_loads_the_tensorflow_interop():
    out = _probe(NTKADV_LOAD_TENSORFLOW="1")
    assert out[:3] == ["True", "True", "True"]


def test_one_thread_jobs_pin_xla_before_jax_is_imported():
    probe = (
        "import os, _common\n"
        "_common.single_thread_xla(2); print(os.environ.get('XLA_FLAGS', '-'))\n"
        "_common.single_thread_xla(1); print(os.environ['XLA_FLAGS'])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = _python(probe, env)
    assert out[0] == "-"
    assert "intra_op_parallelism_threads=1" in out[1]
    assert "--xla_cpu_multi_thread_eigen=false" in out[1]
