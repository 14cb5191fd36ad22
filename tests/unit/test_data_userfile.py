"""Tests of ntkadv.data.userfile / sources: a researcher's own arrays as a dataset."""

from __future__ import annotations

import pathlib

import h5py
import numpy as np
import pytest

from ntkadv import data, h5io
from ntkadv.config import ConfigError, settings_from
from ntkadv.configcheck import check_config
from ntkadv.data import sources, userfile
from ntkadv.data.subsets import make_subset
from ntkadv.data.task import DatasetSettings, prepare_dataset


def arrays(n_train=30, n_test=12, float_images=False, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, size=(n, 6, 5, 2), dtype=np.uint8)
        out[f"x_{split}"] = x.astype(np.float64) / 255 if float_images else x
        out[f"y_{split}"] = np.arange(n) % 3
    return out


def write_npz(path: pathlib.Path, a: dict) -> pathlib.Path:
    np.savez(path, **a)
    return path


def test_npz_and_hdf5_give_the_same_validated_data(tmp_path):
    a = arrays()
    names = np.array(["cat", "dog", "emu"])
    from_npz = userfile.load(
        write_npz(tmp_path / "own.npz", {**a, "class_names": names})
    )
    with h5py.File(tmp_path / "own.h5", "w") as f:
        for k, v in a.items():
            f[k] = v
        f["class_names"] = names.astype("S")
    from_h5 = userfile.load(tmp_path / "own.h5")
    for d in (from_npz, from_h5):
        assert d.input_shape == (6, 5, 2)
        assert d.class_counts["train"][:4] == (10, 10, 10, 0)  # brute force: n % 3
        assert d.class_counts["test"][:3] == (4, 4, 4)
        assert d.class_names[:4] == ("cat", "dog", "emu", "3")
        np.testing.assert_array_equal(d.train.images, a["x_train"])
        np.testing.assert_array_equal(d.test.labels, a["y_test"])
    assert from_npz.sha256 != from_h5.sha256


def test_uint8_and_float_images_give_the_same_subset(tmp_path):
    u = userfile.load(write_npz(tmp_path / "u.npz", arrays()))
    f = userfile.load(write_npz(tmp_path / "f.npz", arrays(float_images=True)))
    su = make_subset(u.train, u.test, [0, 2], 8, 4, "random", 3)
    sf = make_subset(f.train, f.test, [0, 2], 8, 4, "random", 3)
    for k in su:
        np.testing.assert_allclose(sf[k], su[k], rtol=1e-6, atol=1e-7)
    assert su["x_train"].dtype == np.float32 and su["x_train"].max() <= 1.0


BAD = {
    "missing": (lambda a: a.pop("y_test"), "no array(s) ['y_test']"),
    "shape": (lambda a: a.update(x_train=a["x_train"][..., 0]), "x_train has shape"),
    "dtype": (
        lambda a: a.update(x_test=a["x_test"].astype(np.int32)),
        "x_test has dtype int32",
    ),
    "range": (
        lambda a: a.update(x_train=a["x_train"] / 100.0),
        "x_train values lie in [0, 2.55]",
    ),
    "nan": (
        lambda a: a.update(x_test=np.full((12, 6, 5, 2), np.nan)),
        "x_test has non-finite values",
    ),
    "labels": (lambda a: a.update(y_train=a["y_train"] + 8), "y_train labels lie in"),
    "float_labels": (
        lambda a: a.update(y_test=a["y_test"] * 1.0),
        "y_test has dtype float64",
    ),
    "count": (lambda a: a.update(y_train=a["y_train"][:-1]), "y_train has shape"),
    "hw": (
        lambda a: a.update(x_test=np.zeros((12, 5, 6, 2), np.uint8)),
        "x_test images are (5, 6, 2)",
    ),
    "names": (
        lambda a: a.update(class_names=np.array(["a", "b"])),
        "class_names must be 3+ strings",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_mistake_is_one_line_naming_file_and_array(tmp_path, case):
    change, message = BAD[case]
    a = arrays()
    change(a)
    path = write_npz(tmp_path / "own.npz", a)
    with pytest.raises(data.DataIntegrityError) as err:
        userfile.load(path)
    text = str(err.value)
    assert "\n" not in text and text.startswith(str(path)) and message in text, text


class _Touch:
    """Unpickles to "create `path`": a stand-in for a malicious payload."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (self.path,))


def test_object_arrays_are_refused_never_unpickled(tmp_path):
    marker = tmp_path / "pwned"
    a = arrays()
    a["x_train"] = np.array([_Touch(marker)], dtype=object)
    path = write_npz(tmp_path / "evil.npz", a)
    with pytest.raises(data.DataIntegrityError, match="object array"):
        userfile.load(path)
    assert not marker.exists()
    with np.load(path, allow_pickle=True) as z:  # control: the payload is live
        z["x_train"]
    assert marker.exists()


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("own.csv", b"1,2", "unsupported file type"),
        ("own.npz", b"not a zip", "not a readable .npz"),
        ("own.h5", b"not hdf5", "not a readable HDF5"),
    ],
)
def test_unreadable_files_are_named(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(data.DataIntegrityError, match=message):
        userfile.load(tmp_path / name)
    with pytest.raises(data.DataIntegrityError, match="no such file"):
        userfile.load(tmp_path / "absent.npz")


def test_prepare_writes_the_subset_with_file_digest_and_class_names(tmp_path, caplog):
    import hashlib
    import logging

    path = write_npz(
        tmp_path / "own.npz", {**arrays(), "class_names": np.array(["a", "b", "c"])}
    )
    spec = {
        "source": "file",
        "path": str(path),
        "classes": [1, 2],
        "n_train": 6,
        "n_test": 4,
        "selection": "first",
        "seed": 0,
        "permute_labels": False,
    }
    out = tmp_path / "own_ds.h5"
    prepare_dataset(
        {"raw": [str(path)]},
        {"data": str(out)},
        settings_from(DatasetSettings, spec),
        {"dataset": "own"},
        logging.getLogger("t"),
    )
    got, attrs = h5io.read(out), h5io.read_attrs(out)
    assert attrs["dataset"] == "own" and attrs["spec"] == dict(sorted(spec.items()))
    assert got["x_train"].shape == (6, 6, 5, 2)
    assert set(got["labels_train"].tolist()) == {0, 1}
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert attrs["checksums"] == {"own.npz": f"sha256:{digest}"}
    assert attrs["class_names"] == ["b", "c"] and attrs["source"] == "file"


def test_source_info_of_public_sources_matches_the_registry():
    info = sources.public_info("cifar10")
    assert info.input_shape == data.SOURCES["cifar10"].input_shape
    assert info.class_names[0] == "airplane"
    assert sources.public_info("mnist").class_names[3] == "3"


def test_config_check_names_the_path_key_before_any_job(tmp_path, repo):
    import yaml
    from snakemake.utils import validate

    config = yaml.safe_load((repo / "config.yaml").read_text())
    validate(config, str(repo / "workflow" / "schemas" / "config.schema.yaml"))
    config["datasets"]["own"] = {
        "source": "file",
        "path": str(tmp_path / "absent.npz"),
        "classes": [0, 1],
        "n_train": 5,
        "n_test": 2,
        "eps": 0.1,
        "selection": "random",
        "permute_labels": False,
    }
    with pytest.raises(ConfigError, match=r"datasets\.own\.path: .*no such file"):
        check_config(config)
    write_npz(tmp_path / "absent.npz", arrays(n_train=9))
    config["datasets"]["own"]["n_train"] = 50
    with pytest.raises(ConfigError, match=r"datasets\.own\.n_train: 50 exceeds the 6"):
        check_config(config)
