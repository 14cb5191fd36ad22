"""The claims table: every stage's checkable findings (docs/findings.md) in one place."""


localrules:
    aggregate_claims,


rule aggregate_claims:
    """Join results/tables/claims/<stage>.csv of every included stage; the table as
    CSV, Markdown and HTML (the report shows the HTML one inline)."""
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
        html=report(
            "results/tables/claims.html",
            caption="../report/claims.rst",
            category="Claims",
        ),
    log:
        "results/logs/aggregate_claims/aggregate_claims.log",
    conda:
        "../../envs/cpu.yaml"
    script:
        "../../scripts/aggregate_claims.py"
