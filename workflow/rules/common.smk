"""Validation (once, before any job), wildcard constraints and the helpers; no rules.

helpers/sources.smk    a dataset file of the user's, resolved (ntkadv.data.sources)
helpers/checks.smk     name references (ntkadv.configcheck) and cross-section
                       config checks (ntkadv.configcheck.check_config)
helpers/platform.smk   a visible GPU with CPU-only jax is named (ntkadv.platform)
helpers/resources.smk  mem_mb / runtime functions (thin wrappers over ntkadv.sizing)
helpers/<stage>.smk    per-stage inputs and params (canonical: exactly the keys a
                       job consumes, sorted, so unrelated edits rerun nothing)
helpers/targets.smk    what `rule all` builds
script_sources         input.code of every scripted rule (its library imports)
"""

from pathlib import Path

import yaml

from ntkadv.config import ConfigError
from ntkadv.configcheck import (
    check_finite,
    fill_family_maps,
    load_config,
    schema_errors,
)
from ntkadv.kernels.families import FAMILIES
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# The config is re-read from its files by a strict YAML reader (no aliases or
# duplicate keys), each file's `extends:` resolved, and the `--config key=value`
# entries merged over it with typed values (ntkadv.configcheck.load_config).
# Snakefile: config.yaml is the default file; `--configfile` files replace it.
_files = [str(f) for f in workflow.configfiles]
if (
    workflow.config_settings.replace_workflow_config
    and not workflow.overwrite_configfiles
):
    _files = []  # --replace-workflow-config: only the --config entries
try:
    _merged = load_config(
        _files, workflow.config_settings.config_args, workflow.basedir
    )
    check_finite(_merged)
except ConfigError as err:
    raise WorkflowError(str(err)) from None
config.clear()
config.update(_merged)
_schema_path = Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"
_errors = schema_errors(config, str(_schema_path))
if _errors:
    raise WorkflowError("invalid config:\n  " + "\n  ".join(_errors))
validate(config, schema="../schemas/config.schema.yaml")
# per-family maps (x-per-family) get every registry family, then its defaults
with open(_schema_path) as _f:
    fill_family_maps(config, yaml.safe_load(_f), FAMILIES)
validate(config, schema="../schemas/config.schema.yaml")


include: "helpers/sources.smk"
include: "helpers/checks.smk"
include: "helpers/platform.smk"
include: "helpers/data.smk"
include: "helpers/attacks.smk"
include: "helpers/transfer.smk"
include: "helpers/features.smk"
include: "helpers/dynamics.smk"
include: "helpers/resources.smk"
include: "helpers/targets.smk"


def script_sources(name):
    """input.code of a rule: scripts/<name>.py and every local module it imports
    (ntkadv.sources), so that a library edit reruns exactly the jobs importing it;
    Snakemake alone tracks only the script file."""
    from ntkadv.sources import local_sources

    path = Path(workflow.basedir) / "scripts" / f"{name}.py"
    if not path.is_file():
        raise WorkflowError(f"rule script {path} does not exist")
    return [str(p) for p in local_sources(path)]


wildcard_constraints:
    dataset="|".join(config["datasets"]),
    arch="|".join(config["architectures"]),
