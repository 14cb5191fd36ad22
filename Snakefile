"""Reproduction workflow for Tsilivis & Kempe (NeurIPS 2022).

Entry point only: configuration, validation and the rule modules live in workflow/.
The default configuration is config.yaml (laptop scale); `--configfile X` replaces
it entirely (tests/config/smoke.yaml, config/paper.yaml), it does not extend it.
"""

from snakemake.utils import min_version

min_version("9.0")


if not config:

    configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/kernels.smk"
include: "workflow/rules/spectra.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/attacks.smk"
include: "workflow/rules/transfer.smk"
include: "workflow/rules/dynamics.smk"
include: "workflow/rules/claims.smk"


rule all:
    default_target: True
    input:
        get_final_targets(),
