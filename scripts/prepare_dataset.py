"""Rule prepare_dataset: verify raw files and write the model-ready subset."""

from _common import setup_logging


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    from pathlib import Path

    from ntkadv import data, h5io

    spec = dict(smk.params.spec)
    files = {Path(p).name: Path(p) for p in smk.input.raw if Path(p).is_file()}
    for folder in (Path(p) for p in smk.input.raw if Path(p).is_dir()):
        files.update({f.name: f for f in folder.rglob("*") if f.is_file()})
    train, test = data.load_raw(spec["source"], files)
    log.info(
        "verified %d raw %s files", len(data.RAW_FILES[spec["source"]]), spec["source"]
    )
    arrays = data.make_subset(
        train,
        test,
        spec["classes"],
        spec["n_train"],
        spec["n_test"],
        spec["selection"],
        spec["seed"],
    )
    attrs = h5io.provenance(
        dataset=smk.wildcards.dataset,
        task="binary" if len(spec["classes"]) == 2 else "multiclass",
        spec=spec,
        classes=list(spec["classes"]),
        source=spec["source"],
        checksums=data.raw_checksums(spec["source"]),
        raw_files={k: str(v) for k, v in sorted(files.items())},
    )
    h5io.write(smk.output.data, arrays, attrs)
    log.info("wrote %s: %s", smk.output.data, {k: v.shape for k, v in arrays.items()})


if __name__ == "__main__":
    main(snakemake)
