"""Rule plot_transfer_gradients: loss-gradient images of nets and NTK (Fig. 1b)."""

from _common import start


def main(smk) -> None:
    log = start(smk)
    import numpy as np

    from ntkadv import h5io
    from ntkadv.plotting.transfer import class_name, plot_gradient_grid

    ref = h5io.read(smk.input.reference, ["image", "image_epochs", "grad_image"])
    meta = h5io.read_attrs(smk.input.reference)
    columns = {}
    for path in smk.input.runs:
        run = h5io.read_attrs(path)
        columns[f"width {run['width']}"] = h5io.read(path, ["grad_image"])["grad_image"]
    columns["NTK"] = ref["grad_image"]
    epochs = np.asarray(ref["image_epochs"])
    log.info("columns %s, epochs %s", list(columns), epochs.tolist())
    name = class_name(meta["source"], meta["image_class"])
    title = f"{meta['dataset']} test image {smk.params.image_index} ({name})"
    fig = plot_gradient_grid(columns, epochs, meta["image_shape"], ref["image"], title)
    fig.savefig(smk.output.figure, dpi=150, bbox_inches="tight")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
