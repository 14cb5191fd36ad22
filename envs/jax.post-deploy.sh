#!/usr/bin/env bash
# Run by Snakemake once, inside the freshly created ntkadv-jax env (envs/jax.yaml).
# neural-tangents declares tensorflow and tf2jax for an interop module the project
# never imports; --no-deps keeps ~1 GB of TensorFlow out of the env. Its remaining
# dependencies (jax, frozendict) are pinned in jax.yaml.
set -euo pipefail
python -m pip install --no-deps neural-tangents==0.6.5
