"""Stage 1: a public source (ntkadv.data.sources.SOURCES) or the user's file ->
model-ready subsets (results/data/{dataset}.h5)."""


localrules:
    download_raw_data,


rule download_raw_data:
    """Fetch a public source's raw files from its registry URLs (only when no local
    copy exists)."""
    input:
        code=script_sources("download_raw_data"),
    output:
        raw=directory("results/raw/{source}"),
    log:
        "results/logs/download_raw_data/{source}.log",
    wildcard_constraints:
        source=public_source_pattern(),
    conda:
        "../../envs/cpu.yaml"
    script:
        "../../scripts/download_raw_data.py"


rule prepare_dataset:
    """Verify the raw files and write the model-ready subset (pixels in [0, 1])."""
    input:
        raw=get_raw_inputs,
        code=script_sources("prepare_dataset"),
    output:
        data="results/data/{dataset}.h5",
    log:
        "results/logs/prepare_dataset/{dataset}.log",
    benchmark:
        "results/benchmarks/prepare_dataset/{dataset}.tsv"
    conda:
        "../../envs/cpu.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=15,
    params:
        settings=prepare_dataset_params,
    script:
        "../../scripts/prepare_dataset.py"
