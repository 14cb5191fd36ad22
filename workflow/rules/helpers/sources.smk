"""Dataset sources (ntkadv.data.sources): a `source: file` dataset's path is made
absolute (relative paths from the project directory, like data.search_dirs) before
the config checks validate the file, and its image shape is read once."""

from functools import cache

from ntkadv.data.sources import source_info, user_path

for _spec in config["datasets"].values():
    if _spec["source"] == "file":
        _spec["path"] = str(user_path(_spec, workflow.basedir).resolve())


@cache
def dataset_input_dim(dataset):
    """Flattened input dimension d of a configured dataset (784 MNIST, 3072 CIFAR)."""
    import math

    return math.prod(source_info(config["datasets"][dataset]).input_shape)
