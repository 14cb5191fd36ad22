"""Rules of the data stage: prepare_dataset (here) and download_raw_data.

`download_raw_data` is defined with the download code (`ntkadv.data.download`) and
loaded from here on first access (PEP 562, `_API`, read statically by
ntkadv.sources): the prepare_dataset job, which imports this module, does not carry
the download code in its code inputs, so an edit to it reruns only the download.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
from pathlib import Path
from typing import Any

#: Lazy name -> the module defining it (read statically by ntkadv.sources).
_API = {"download_raw_data": "ntkadv.data.download"}


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'ntkadv.data.task' has no attribute {name!r}")


@dataclasses.dataclass(frozen=True)
class DatasetSettings:
    """Params of rule prepare_dataset: the subset definition and the seed.

    Attributes:
        source: a public source of the registry (`ntkadv.data.sources.SOURCES`) or
            "file" (the user's arrays, `ntkadv.data.userfile`).
        classes: raw labels kept, in label order (two: binary task).
        n_train, n_test: subset sizes.
        selection: "first" or "random" (`ntkadv.data.subsets.select_indices`).
        seed: the config seed (random selection, label permutation).
        permute_labels: negative control, training labels permuted.
        path: the user's file (source "file" only).
    """

    source: str
    classes: tuple[int, ...]
    n_train: int
    n_test: int
    selection: str
    seed: int
    permute_labels: bool = False
    path: str | None = None

    def spec(self) -> dict[str, Any]:
        """The settings as recorded in the prepared file (sorted keys, as given)."""
        out = dataclasses.asdict(self)
        out["classes"] = list(self.classes)
        if self.path is None:
            del out["path"]
        return dict(sorted(out.items()))


def prepare_dataset(
    inputs: dict[str, Any],
    outputs: dict[str, str],
    settings: DatasetSettings,
    ids: dict[str, str],
    log: logging.Logger,
) -> None:
    """Rule prepare_dataset: verify the raw files, write the model-ready subset.

    Args:
        inputs: raw = the raw files, or folders holding them (the download rule's
            output); for ``source: file`` the user's file.
        outputs: data = results/data/{dataset}.h5.
        settings: the subset (`DatasetSettings`).
        ids: dataset = the config name of the dataset.
        log: the job's logger.
    """
    from ntkadv import h5io
    from ntkadv.data.sources import FILE, load_raw, public_info, raw_checksums
    from ntkadv.data.subsets import make_subset, permute_training_labels

    s = settings
    raw = inputs["raw"]
    raw_paths = [raw] if isinstance(raw, str) else raw
    files = {Path(p).name: Path(p) for p in raw_paths if Path(p).is_file()}
    for folder in (Path(p) for p in raw_paths if Path(p).is_dir()):
        files.update({f.name: f for f in folder.rglob("*") if f.is_file()})
    if s.source == FILE:
        from ntkadv.data import userfile

        (path,) = files.values()
        user = userfile.load(path)
        train, test, names = user.train, user.test, user.class_names
        checksums = {path.name: f"sha256:{user.sha256}"}
        log.info("validated %s (sha256 %s)", path, user.sha256)
    else:
        train, test = load_raw(s.source, files)
        names, checksums = public_info(s.source).class_names, raw_checksums(s.source)
        log.info("verified %d raw %s files", len(checksums), s.source)
    arrays = make_subset(
        train, test, s.classes, s.n_train, s.n_test, s.selection, s.seed
    )
    if s.permute_labels:
        permute_training_labels(arrays, s.seed)
        log.warning("negative control: training labels permuted (config seed)")
    attrs = h5io.provenance(
        dataset=ids["dataset"],
        permuted_labels=s.permute_labels,
        task="binary" if len(s.classes) == 2 else "multiclass",
        spec=s.spec(),
        classes=list(s.classes),
        source=s.source,
        checksums=checksums,
        class_names=[names[c] for c in s.classes],
        raw_files={k: str(v) for k, v in sorted(files.items())},
    )
    h5io.write(outputs["data"], arrays, attrs)
    log.info("wrote %s: %s", outputs["data"], {k: v.shape for k, v in arrays.items()})
