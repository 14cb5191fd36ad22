"""Rule plot_kernel_images: eNTK at init / after standard / after PGD training."""

from _common import start


def main(smk) -> None:
    start(smk)

    from ntkadv import h5io
    from ntkadv.plotting import dynamics as pd

    def kernel(path, epoch):
        with h5io.open_read(path) as f:
            return f["kernels"][epoch]

    std_attrs, pgd_attrs = (
        h5io.read_attrs(smk.input.standard),
        h5io.read_attrs(smk.input.pgd),
    )
    e_std, e_pgd = std_attrs["spec"]["epochs"], pgd_attrs["spec"]["epochs"]
    steps = pgd_attrs["spec"]["train_attack"]["steps"]
    panels = {
        "initialisation": kernel(smk.input.standard, 0),
        f"after standard training ({e_std} ep.)": kernel(smk.input.standard, -1),
        f"after PGD-{steps} training ({e_pgd} ep.)": kernel(smk.input.pgd, -1),
    }
    name = pd.dataset_label(smk.wildcards.dataset, smk.params.source)
    title = (
        f"{name}: eNTK on the first "
        f"{std_attrs['spec']['kernel_batch']} training images "
        f"({std_attrs['kernel_inputs']} inputs), shared colour scale"
    )
    fig = pd.kernel_images(panels, title, std_attrs["spec"]["num_classes"])
    fig.savefig(smk.output.png, dpi=150, bbox_inches="tight")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
