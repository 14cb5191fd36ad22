"""Validation (once, before any job), wildcard constraints and the helpers; no rules.

helpers/checks.smk     cross-section config checks (ntkadv.config.check_config)
helpers/resources.smk  mem_mb / runtime functions (thin wrappers over ntkadv.sizing)
helpers/<stage>.smk    per-stage inputs and params (canonical: exactly the keys a
                       job consumes, sorted, so unrelated edits rerun nothing)
helpers/targets.smk    what `rule all` builds
"""

from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")


include: "helpers/checks.smk"
include: "helpers/data.smk"
include: "helpers/attacks.smk"
include: "helpers/transfer.smk"
include: "helpers/features.smk"
include: "helpers/dynamics.smk"
include: "helpers/resources.smk"
include: "helpers/targets.smk"


wildcard_constraints:
    dataset="|".join(config["datasets"]),
    arch="|".join(config["architectures"]),
