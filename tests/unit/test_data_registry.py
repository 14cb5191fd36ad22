"""The data-source registry (ntkadv.data.sources.SOURCES): a new public dataset is
one entry. A small source ("tiny", files written by the test, no network) is
registered here and every registry-driven code path picks it up with no other code
edit: the download rule's wildcard constraint, shape / class / name / label lookups
(config checks, sizing, figures), locating, reading and verifying the raw files, the
download, and rule prepare_dataset."""

from __future__ import annotations

import hashlib
import io
import logging
import re

import numpy as np
import pytest

from ntkadv import h5io, sizing
from ntkadv.config import ConfigError, settings_from
from ntkadv.data import download, raw, sources
from ntkadv.data.task import DatasetSettings, prepare_dataset

SHAPE = (4, 4, 1)
NAMES = tuple("abcdefghij")
N = {"train": 20, "test": 10}


def _split(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "x": rng.integers(0, 256, (n, *SHAPE), dtype=np.uint8),
        "y": np.arange(n, dtype=np.uint8) % 10,  # two images per class (train)
    }


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def read_tiny(paths, digests):
    """The new source's reader: .npz splits, verified by sha256, never unpickled."""

    def split(name: str) -> raw.RawSplit:
        payload = raw.read_verified(paths[name], digests[name])
        with np.load(io.BytesIO(payload), allow_pickle=False) as z:
            return raw.RawSplit(z["x"], z["y"].astype(np.int64))

    return split("tiny-train.npz"), split("tiny-test.npz")


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """(entry, data dir holding its files, file bytes): the source registered."""
    payloads = {
        f"tiny-{split}.npz": _npz(_split(n, seed))
        for seed, (split, n) in enumerate(N.items())
    }
    data_dir = tmp_path / "data"
    (data_dir / "tiny").mkdir(parents=True)
    for name, payload in payloads.items():
        (data_dir / "tiny" / name).write_bytes(payload)
    entry = sources.PublicSource(
        label="Tiny",
        subdir="tiny",
        files={n: hashlib.sha256(p).hexdigest() for n, p in payloads.items()},
        reader=read_tiny,
        check=raw.check_sha256,
        input_shape=SHAPE,
        class_counts={"train": (2,) * 10, "test": (1,) * 10},
        class_names=NAMES,
        urls=("https://mirror-a.invalid/tiny/", "https://mirror-b.invalid/tiny/"),
    )
    monkeypatch.setitem(sources.SOURCES, "tiny", entry)
    return entry, data_dir, payloads


def test_every_public_entry_is_complete_and_lives_under_its_name():
    """The download rule writes results/raw/{source}: each entry's subdir starts
    with its name; and each entry says how to fetch and check its files."""
    for name, entry in sources.SOURCES.items():
        assert entry.subdir.split("/")[0] == name
        assert entry.urls or entry.archive
        assert len(entry.class_names) == 10 and len(entry.input_shape) == 3
        assert set(entry.class_counts) == {"train", "test"}


def test_the_download_rule_constraint_is_built_from_the_registry(tiny, repo):
    pattern = sources.source_pattern()
    for name in ("mnist", "cifar10", "tiny"):
        assert re.fullmatch(pattern, name)
    assert not re.fullmatch(pattern, "cifar2")
    rules = (repo / "workflow/rules/01_data.smk").read_text()
    assert "source=public_source_pattern()" in rules and "mnist|" not in rules


def test_lookups_pick_up_the_new_source(tiny):
    from ntkadv.plotting import attacks, dynamics, transfer

    info = sources.source_info({"source": "tiny"})
    assert info.input_shape == SHAPE and info.class_counts["test"] == (1,) * 10
    assert sizing.input_dim("tiny") == 16
    assert sources.raw_relpaths("tiny") == ["tiny/tiny-train.npz", "tiny/tiny-test.npz"]
    assert attacks.class_names("tiny", [3, 1]) == ["d", "b"]
    assert transfer.class_name("tiny", 2) == "c"
    assert dynamics.dataset_label("anything", "tiny") == "Tiny"
    assert dynamics.dataset_label("mnist60k", "mnist") == "MNIST"
    assert dynamics.dataset_label("own", "file") == "own"


def test_the_reader_verifies_the_new_files(tiny):
    entry, data_dir, _ = tiny
    found = sources.locate_raw("tiny", [data_dir])
    assert all(found.values())
    train, test = sources.load_raw("tiny", found)
    assert train.images.shape == (20, *SHAPE) and test.labels.dtype == np.int64
    assert sources.raw_checksums("tiny") == dict(entry.files)
    bad = data_dir / "tiny" / "tiny-test.npz"
    payload = bytearray(bad.read_bytes())
    payload[-1] ^= 1
    bad.write_bytes(payload)
    with pytest.raises(raw.DataIntegrityError, match="tiny-test.npz.*sha256"):
        sources.load_raw("tiny", found)
    bad.unlink()
    with pytest.raises(raw.DataIntegrityError, match="missing raw tiny"):
        sources.load_raw("tiny", {k: v for k, v in found.items() if "test" not in k})


def test_the_download_uses_the_entry_urls_and_check(tiny, tmp_path):
    entry, _, payloads = tiny
    tried = []

    def fetch(url: str) -> bytes:
        tried.append(url)
        name = url.rsplit("/", 1)[1]
        return b"garbage" if "mirror-a" in url else payloads[name]

    files = download.download_raw("tiny", tmp_path / "raw", fetch=fetch)
    assert [f.read_bytes() for f in files] == list(payloads.values())
    assert tried[:2] == [
        "https://mirror-a.invalid/tiny/tiny-train.npz",
        "https://mirror-b.invalid/tiny/tiny-train.npz",
    ]
    with pytest.raises(raw.DataIntegrityError, match="Tiny file 'tiny-train.npz'"):
        download.download_raw("tiny", tmp_path / "raw2", fetch=lambda url: b"bad")
    assert not list((tmp_path / "raw2").rglob("*.npz"))


def test_prepare_dataset_and_config_checks_take_the_new_source(tiny, tmp_path, repo):
    import yaml
    from snakemake.utils import validate

    from ntkadv.configcheck import check_config

    _, data_dir, _ = tiny
    spec = {
        "source": "tiny",
        "classes": [1, 2],
        "n_train": 4,
        "n_test": 2,
        "selection": "first",
        "seed": 0,
        "permute_labels": False,
    }
    out = tmp_path / "tinyset.h5"
    prepare_dataset(
        {"raw": [str(data_dir / "tiny")]},
        {"data": str(out)},
        settings_from(DatasetSettings, spec),
        {"dataset": "tinyset"},
        logging.getLogger("t"),
    )
    got, attrs = h5io.read(out), h5io.read_attrs(out)
    assert got["x_train"].shape == (4, *SHAPE)
    assert attrs["class_names"] == ["b", "c"] and attrs["dataset"] == "tinyset"
    config = yaml.safe_load((repo / "config.yaml").read_text())
    validate(config, str(repo / "workflow" / "schemas" / "config.schema.yaml"))
    config["datasets"]["tinyset"] = {**spec, "eps": 0.1}
    check_config(config)
    config["datasets"]["tinyset"]["n_train"] = 5
    with pytest.raises(ConfigError, match=r"tinyset\.n_train: 5 exceeds the 4"):
        check_config(config)
    config["datasets"]["tinyset"]["source"] = "svhn"
    with pytest.raises(ConfigError, match=r"tinyset\.source: unknown source 'svhn'"):
        check_config(config)


def test_a_fashionmnist_shaped_source_reuses_the_mnist_reader(tmp_path, monkeypatch):
    """FashionMNIST ships the IDX layout of MNIST under the same file names: its entry
    is MNIST's reader and check with its own digests, folder, classes and label.
    Files generated here (mostly blank images), not downloaded."""
    import gzip

    rng = np.random.default_rng(0)
    contents, counts = {}, {}
    for prefix, split, n in (("train", "train", 60000), ("t10k", "test", 10000)):
        images = np.zeros((n, 28, 28), np.uint8)
        images[:, 14, 14] = rng.integers(0, 256, n, dtype=np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        counts[split] = tuple(int(c) for c in np.bincount(labels, minlength=10))
        header = np.array([2051, n, 28, 28], ">u4").tobytes()
        contents[f"{prefix}-images-idx3-ubyte.gz"] = header + images.tobytes()
        header = np.array([2049, n], ">u4").tobytes()
        contents[f"{prefix}-labels-idx1-ubyte.gz"] = header + labels.tobytes()
    folder = tmp_path / "fashionmnist"
    folder.mkdir()
    payloads = {}
    for name, content in contents.items():
        payloads[name] = gzip.compress(content, compresslevel=1)
        (folder / name).write_bytes(payloads[name])
    entry = sources.PublicSource(
        label="Fashion-MNIST",
        subdir="fashionmnist",
        files={n: hashlib.sha256(c).hexdigest() for n, c in contents.items()},
        reader=raw.read_mnist,
        check=raw.check_mnist_idx,
        input_shape=(28, 28, 1),
        class_counts=counts,
        class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat")
        + ("Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        urls=("https://mirror.invalid/fashion/",),
    )
    monkeypatch.setitem(sources.SOURCES, "fashionmnist", entry)
    train, test = sources.load_raw(
        "fashionmnist", sources.locate_raw("fashionmnist", [tmp_path])
    )
    assert train.images.shape == (60000, 28, 28, 1)
    assert tuple(np.bincount(test.labels, minlength=10)) == counts["test"]
    got = download.download_raw(
        "fashionmnist", tmp_path / "raw", fetch=lambda u: payloads[u.rsplit("/")[-1]]
    )
    assert [f.read_bytes() for f in got] == list(payloads.values())
    assert sources.class_names("fashionmnist", [9]) == ["Ankle boot"]
    mnist = sources.SOURCES["mnist"]
    with pytest.raises(raw.DataIntegrityError, match="sha256 of the IDX content"):
        sources.load_raw("mnist", sources.locate_raw("fashionmnist", [tmp_path]))
    assert mnist.files != entry.files
