"""Start-up check of the accelerator (ntkadv.platform): a visible NVIDIA GPU with the
CPU-only jax of the default lock is named once, instead of every rule silently running
on the CPU."""

from ntkadv.platform import cuda_plugin_installed, gpu_mismatch, nvidia_gpus
from snakemake.logging import logger

_gpu_warning = gpu_mismatch(nvidia_gpus(), cuda_plugin_installed())
if _gpu_warning:
    logger.warning(f"warning: {_gpu_warning}")
