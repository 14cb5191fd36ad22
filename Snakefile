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
