"""Reproduction workflow for Tsilivis & Kempe (NeurIPS 2022).

Entry point only: configuration, validation and the rule modules live in workflow/.
The default configuration is config.yaml (laptop scale); `--configfile X` replaces
it entirely (tests/config/smoke.yaml, config/paper.yaml), it does not extend it (X
may start with `extends: config.yaml`). `--config key=value` overrides single keys
of whichever is used (values are YAML: `--config seed=1 'transfer={lr: 0.02}'`).
workflow/rules/common.smk re-reads these files strictly (ntkadv.configcheck).
"""

from snakemake.utils import min_version

min_version("9.0")


# not `if not config`: `--config seed=1` alone must still load config.yaml
if not workflow.overwrite_configfiles:

    configfile: f"{workflow.basedir}/config.yaml"  # also under --directory


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/01_data.smk"
include: "workflow/rules/02_kernels.smk"
include: "workflow/rules/03_spectra.smk"
include: "workflow/rules/04_attacks.smk"
include: "workflow/rules/05_transfer.smk"
include: "workflow/rules/06_features.smk"
include: "workflow/rules/07_dynamics.smk"
include: "workflow/rules/08_claims.smk"


rule all:
    default_target: True
    input:
        get_final_targets(),
