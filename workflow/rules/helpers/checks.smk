"""Config checks (name references, cross-section) and job-scheduling constants."""

import yaml
from ntkadv.config import ConfigError, canonical, pick
from ntkadv.configcheck import check_config, check_references

try:
    check_references(config, yaml.safe_load(_schema_path.read_text()))
    check_config(config)
except ConfigError as err:
    raise WorkflowError(str(err)) from None

# Threads of every JAX compute job (kernels, attacks, features, training). On the
# 2-core laptop run, CPU time / wall time of each such job was 0.9-1.2 (benchmark
# files), so one thread per job lets two jobs run side by side.
COMPUTE_THREADS = 1
# The training runs of the dynamics stage are the longest jobs and sit at the bottom
# of the DAG; starting them first shortens the tail of a run.
LONG_JOB_PRIORITY = 10
