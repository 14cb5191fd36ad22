"""The claims table: every stage's checkable findings (docs/findings.md) in one place."""


localrules:
    aggregate_claims,


rule aggregate_claims:
    """Join results/tables/claims/<stage>.csv of every included stage."""
    input:
        tables=get_claims_tables,
        code=script_sources("aggregate_claims"),
    output:
        csv=report(
            "results/tables/claims.csv",
            caption="../report/claims.rst",
            category="Claims",
        ),
        md=report(
            "results/tables/claims.md",
            caption="../report/claims.rst",
            category="Claims",
        ),
    log:
        "results/logs/aggregate_claims/aggregate_claims.log",
    conda:
        "../../envs/cpu.yaml"
    script:
        "../../scripts/aggregate_claims.py"
