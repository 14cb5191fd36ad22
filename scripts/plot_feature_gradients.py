"""Rule plot_feature_gradients: loss-gradient images of single eigenfeatures."""

from _common import start


def main(smk) -> None:
    start(smk)
    from ntkadv import data, h5io
    from ntkadv.features import scoring
    from ntkadv.plotting import features as pf

    s, a = h5io.read(smk.input.scores), h5io.read_attrs(smk.input.scores)
    t, shape = a["image_test_index"], a["image_shape"]
    x_test = data.load_prepared(smk.input.data)["x_test"]
    shown = s["image_indices"]  # the notebook's indices at n_train, null space out
    lam = s["eigvals"][s["indices"].searchsorted(shown)]
    fig = pf.gradient_grid(
        scoring.gradient_images(s["gradients"]),
        shown,
        x_test[t].reshape(-1),
        shape,
        f"{a['dataset']} {pf.arch_label(a['arch'])} (n={a['n_train']}): "
        f"min-max normalised ∇ₓL(f⁽ⁱ⁾(x), y), test image {t}",
        labels=[f"λ={v:.2g}" for v in lam],
    )
    fig.savefig(smk.output.png, dpi=150, bbox_inches="tight")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
