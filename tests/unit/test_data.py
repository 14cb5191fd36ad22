"""Tests of ntkadv.data: checksums, decoding, subset selection, target encoding."""

from __future__ import annotations

import gzip
import hashlib
import shutil

import numpy as np
import pytest

from ntkadv import data, h5io


@pytest.fixture(scope="module")
def mnist_raw(shared_data):
    files = data.locate_raw("mnist", [shared_data])
    return data.load_raw("mnist", files)


@pytest.fixture(scope="module")
def cifar_raw(shared_data):
    files = data.locate_raw("cifar10", [shared_data])
    return data.load_raw("cifar10", files)


def test_mnist_matches_published_counts(mnist_raw):
    train, test = mnist_raw
    assert train.images.shape == (60000, 28, 28, 1)
    assert test.images.shape == (10000, 28, 28, 1)
    # label histograms published in shared/data/README.md (independent of our code)
    expected_test = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    np.testing.assert_array_equal(np.bincount(test.labels), expected_test)
    assert np.bincount(train.labels)[0] == 5923


def test_cifar_matches_published_statistics(cifar_raw):
    train, test = cifar_raw
    assert train.images.shape == (50000, 32, 32, 3)
    np.testing.assert_array_equal(np.bincount(train.labels), [5000] * 10)
    np.testing.assert_array_equal(np.bincount(test.labels), [1000] * 10)
    # well-known per-channel mean of the CIFAR-10 training set
    mean = train.images.reshape(-1, 3).mean(axis=0) / 255.0
    np.testing.assert_allclose(mean, [0.4914, 0.4822, 0.4465], atol=5e-4)


def test_cifar_image_layout_is_hwc(shared_data):
    """Row 0 of the pickle holds 1024 red values first: pixel (0, 0) red channel."""
    import pickle

    path = shared_data / "cifar10/cifar-10-batches-py/test_batch"
    with open(path, "rb") as f:
        raw = pickle.load(f, encoding="bytes")[b"data"]
    images = data.read_cifar_batch(path).images
    assert images[0, 0, 0, 0] == raw[0, 0]
    assert images[0, 0, 1, 0] == raw[0, 1]
    assert images[0, 0, 0, 1] == raw[0, 1024]
    assert images[0, 0, 0, 2] == raw[0, 2048]


def test_corrupt_mnist_file_is_named(tmp_path, shared_data):
    src = shared_data / "mnist/t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(src.read_bytes()))
    raw[100] ^= 1
    bad = tmp_path / src.name
    bad.write_bytes(gzip.compress(bytes(raw)))
    expected = data.MNIST_FILES[src.name]
    with pytest.raises(data.DataIntegrityError, match=rf"{bad.name}.*{expected}"):
        data.read_mnist_idx(bad)


def test_truncated_cifar_file_is_named(tmp_path, shared_data):
    src = shared_data / "cifar10/cifar-10-batches-py/test_batch"
    bad = tmp_path / "test_batch"
    bad.write_bytes(src.read_bytes()[:1000])
    with pytest.raises(data.DataIntegrityError, match="test_batch"):
        data.read_cifar_batch(bad)


def test_locate_raw_reports_missing_and_prefers_first_dir(tmp_path, shared_data):
    (tmp_path / "mnist").mkdir()
    name = "t10k-labels-idx1-ubyte.gz"
    shutil.copy(shared_data / "mnist" / name, tmp_path / "mnist" / name)
    found = data.locate_raw("mnist", [tmp_path, shared_data])
    assert found[f"mnist/{name}"] == (tmp_path / "mnist" / name).resolve()
    only_tmp = data.locate_raw("mnist", [tmp_path])
    assert sum(v is None for v in only_tmp.values()) == 3


@pytest.mark.parametrize("selection", ["first", "random"])
def test_select_indices(selection):
    labels = np.array([0, 3, 1, 1, 2, 0, 1, 0, 3, 1])
    idx = data.select_indices(labels, [0, 1], 4, selection, seed=7)
    assert idx.shape == (4,)
    assert np.all(np.diff(idx) > 0)
    assert set(labels[idx]) <= {0, 1}
    if selection == "first":
        np.testing.assert_array_equal(idx, [0, 2, 3, 5])
    np.testing.assert_array_equal(
        idx, data.select_indices(labels, [0, 1], 4, selection, seed=7)
    )


def test_select_indices_too_many():
    with pytest.raises(ValueError, match="only 2 exist"):
        data.select_indices(np.array([0, 1, 5]), [0, 1], 3, "first", 0)


def test_encode_targets_binary_and_onehot():
    index, y = data.encode_targets(np.array([1, 0, 1]), [0, 1])
    np.testing.assert_array_equal(index, [1, 0, 1])
    np.testing.assert_array_equal(y, [[1.0], [-1.0], [1.0]])
    index, y = data.encode_targets(np.array([7, 2, 9]), [2, 7, 9])
    np.testing.assert_array_equal(index, [1, 0, 2])
    np.testing.assert_array_equal(y.argmax(1), index)
    np.testing.assert_array_equal(y.sum(1), 1.0)


def test_make_subset_binary_cifar(cifar_raw):
    train, test = cifar_raw
    out = data.make_subset(train, test, [0, 1], 50, 20, "random", seed=3)
    assert out["x_train"].shape == (50, 32, 32, 3)
    assert out["x_train"].dtype == np.float32
    assert 0.0 <= out["x_train"].min() and out["x_train"].max() <= 1.0
    # airplane (class 0) -> -1, automobile (class 1) -> +1
    raw_labels = train.labels[out["index_train"]]
    np.testing.assert_array_equal(
        out["y_train"][:, 0], np.where(raw_labels == 0, -1, 1)
    )
    np.testing.assert_allclose(
        out["x_test"][0], test.images[out["index_test"][0]] / 255.0, rtol=1e-6
    )


def test_download_verifies_before_writing(tmp_path, shared_data):
    """A fetch that returns wrong bytes leaves no file behind and names the file."""
    good = {
        name: (shared_data / "mnist" / name).read_bytes() for name in data.MNIST_FILES
    }

    def fetch(url):
        name = url.rsplit("/", 1)[1]
        if name == "t10k-images-idx3-ubyte.gz":
            return gzip.compress(b"not mnist")
        return good[name]

    with pytest.raises(data.DataIntegrityError, match="t10k-images-idx3-ubyte.gz"):
        data.download_raw("mnist", tmp_path, fetch=fetch)
    assert not (tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz").exists()
    assert not list((tmp_path / "mnist").glob(".*part"))


def test_download_offline_message(tmp_path):
    def fetch(url):
        raise OSError("network is unreachable")

    with pytest.raises(data.DataIntegrityError, match="cifar-10-python.tar.gz"):
        data.download_raw("cifar10", tmp_path, fetch=fetch)


def test_download_roundtrip(tmp_path, shared_data):
    payloads = {n: (shared_data / "mnist" / n).read_bytes() for n in data.MNIST_FILES}
    files = data.download_raw(
        "mnist", tmp_path, fetch=lambda u: payloads[u.rsplit("/", 1)[1]]
    )
    for f in files:
        assert (
            hashlib.sha256(f.read_bytes()).digest()
            == hashlib.sha256(payloads[f.name]).digest()
        )


def test_h5io_roundtrip_and_atomicity(tmp_path):
    path = tmp_path / "a.h5"
    h5io.write(path, {"x": np.arange(6.0).reshape(2, 3)}, {"spec": {"n": 2}, "k": 3})
    back = h5io.read(path)
    np.testing.assert_array_equal(back["x"], np.arange(6.0).reshape(2, 3))
    assert h5io.read_attrs(path)["spec"] == {"n": 2}
    with pytest.raises(RuntimeError), h5io.atomic_h5(path) as f:
        f.create_dataset("y", data=np.zeros(3))
        raise RuntimeError("killed mid-write")
    assert list(h5io.read(path)) == ["x"]  # old file untouched
    assert [p.name for p in tmp_path.iterdir()] == ["a.h5"]  # no temp file left
