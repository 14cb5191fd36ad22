"""Tests of ntkadv.data: checksums, safe decoding, subsets, target encoding."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import importlib
import io
import pathlib
import pickle
import shutil
import subprocess
import sys
import tarfile
import time
import tracemalloc

import numpy as np
import pytest

from ntkadv import data, h5io

CIFAR_DIR = "cifar10/cifar-10-batches-py"
MNIST_FILES = data.SOURCES["mnist"].files
CIFAR10_FILES = data.SOURCES["cifar10"].files


def read_mnist_idx(path):
    """`data.read_mnist_idx` with the registry's digest of the file (by its name)."""
    return data.read_mnist_idx(path, MNIST_FILES.get(pathlib.Path(path).name, ""))


def read_cifar_batch(path):
    """`data.read_cifar_batch` with the registry's digest of the file (by its name)."""
    return data.read_cifar_batch(path, CIFAR10_FILES.get(pathlib.Path(path).name, ""))


@pytest.fixture(scope="module")
def mnist_raw(shared_data):
    files = data.locate_raw("mnist", [shared_data])
    return data.load_raw("mnist", files)


@pytest.fixture(scope="module")
def cifar_raw(shared_data):
    files = data.locate_raw("cifar10", [shared_data])
    return data.load_raw("cifar10", files)


# ------------------------------------------------- the lazy face (ntkadv/data/__init__)


@pytest.mark.parametrize("name", data.__all__)
def test_every_public_name_resolves_to_its_module(name):
    """ntkadv.sources reads `_API` to find a name's module: it must be the module
    that defines the name."""
    module = importlib.import_module(data._API[name])
    assert getattr(data, name) is getattr(module, name)
    assert name in dir(data)


def test_the_face_imports_no_module_until_a_name_is_used():
    code = (
        "import sys, ntkadv.data as d\n"
        "before = sorted(m for m in sys.modules if m.startswith('ntkadv.data.'))\n"
        "d.load_prepared\n"
        "print(before, 'ntkadv.data.download' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["[]", "False"]
    with pytest.raises(AttributeError, match="no_such_name"):
        data.no_such_name  # noqa: B018


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
    images = read_cifar_batch(path).images
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
    expected = MNIST_FILES[src.name]
    with pytest.raises(data.DataIntegrityError, match=rf"{bad.name}.*{expected}"):
        read_mnist_idx(bad)


def test_truncated_cifar_file_is_named(tmp_path, shared_data):
    src = shared_data / "cifar10/cifar-10-batches-py/test_batch"
    bad = tmp_path / "test_batch"
    bad.write_bytes(src.read_bytes()[:1000])
    with pytest.raises(data.DataIntegrityError, match="test_batch"):
        read_cifar_batch(bad)


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
    good = {name: (shared_data / "mnist" / name).read_bytes() for name in MNIST_FILES}

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
    payloads = {n: (shared_data / "mnist" / n).read_bytes() for n in MNIST_FILES}
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


# ------------------------------------------------------------ hostile raw files


class _Touch:
    """Unpickles to "create `path`": a harmless stand-in for a malicious payload."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (self.path,))


@pytest.fixture(scope="module")
def plain_batch(shared_data) -> dict:
    """data_batch_1 of the trusted shared copy, decoded by plain pickle."""
    with open(shared_data / CIFAR_DIR / "data_batch_1", "rb") as f:
        return pickle.load(f, encoding="bytes")


def _dump(path: pathlib.Path, obj, protocol: int = 2) -> pathlib.Path:
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_hostile_pickle_is_refused_without_running(tmp_path, protocol):
    marker = tmp_path / "pwned"
    bad = _dump(tmp_path / "data_batch_1", _Touch(marker), protocol)
    with pytest.raises(data.DataIntegrityError, match="refused.*global") as err:
        read_cifar_batch(bad)
    assert str(bad) in str(err.value)
    assert not marker.exists()
    with open(bad, "rb") as f:  # control: the payload is live under plain pickle
        pickle.load(f)
    assert marker.exists()


@pytest.mark.parametrize("first", [True, False])
def test_real_batch_with_payload_key_is_refused(tmp_path, plain_batch, first):
    marker = tmp_path / "pwned"
    extra = {b"evil": _Touch(marker)}
    batch = {**extra, **plain_batch} if first else {**plain_batch, **extra}
    bad = _dump(tmp_path / "data_batch_1", batch)
    with pytest.raises(data.DataIntegrityError, match="refused to load pickled glob"):
        read_cifar_batch(bad)
    assert not marker.exists()


def test_official_layout_with_filenames_loads(tmp_path, plain_batch, shared_data):
    names = [f"img_{i}.png".encode() for i in range(10000)]
    path = _dump(tmp_path / "data_batch_1", {**plain_batch, b"filenames": names})
    got = read_cifar_batch(path)
    ref = read_cifar_batch(shared_data / CIFAR_DIR / "data_batch_1")
    np.testing.assert_array_equal(got.images, ref.images)
    np.testing.assert_array_equal(got.labels, ref.labels)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: {**b, b"extra": 1}, "keys .*'extra'"),
        (lambda b: {**b, "data": b[b"data"]}, "keys"),
        (lambda b: {b"labels": b[b"labels"]}, "keys"),
        (lambda b: [b[b"data"]], "top level is a list"),
        (lambda b: {**b, b"data": np.zeros((2, 3), np.float32)}, "float32 \\(2, 3\\)"),
        (lambda b: {**b, b"data": b[b"data"][:-1]}, "uint8 \\(9999, 3072\\)"),
        (lambda b: {**b, b"data": np.array([None])}, "refused numpy dtype"),
        (lambda b: {**b, b"labels": b[b"labels"][:-1]}, "'labels'"),
        (lambda b: {**b, b"labels": [10] + b[b"labels"][1:]}, "'labels'"),
        (lambda b: {**b, b"labels": [True] + b[b"labels"][1:]}, "'labels'"),
        (lambda b: {**b, b"batch_label": 3}, "'batch_label'"),
        (lambda b: {**b, b"filenames": [b"a.png"]}, "'filenames'"),
    ],
    ids=[
        "extra-key",
        "duplicate-key",
        "no-data",
        "not-a-dict",
        "float-data",
        "short-data",
        "object-data",
        "short-labels",
        "label-10",
        "bool-label",
        "int-batch-label",
        "short-filenames",
    ],
)
def test_malformed_batch_is_named(tmp_path, plain_batch, change, message):
    bad = _dump(tmp_path / "test_batch", change(plain_batch))
    with pytest.raises(data.DataIntegrityError, match=message) as err:
        read_cifar_batch(bad)
    assert str(bad) in str(err.value)


def test_batch_with_trailing_data_or_wrong_rows_is_named(tmp_path, shared_data):
    src = (shared_data / CIFAR_DIR / "data_batch_2").read_bytes()
    bad = tmp_path / "data_batch_2"
    bad.write_bytes(src + b"x")
    with pytest.raises(data.DataIntegrityError, match="data_batch_2.*after the pic"):
        read_cifar_batch(bad)
    bad = tmp_path / "data_batch_3"  # a genuine batch under another batch's name
    bad.write_bytes(src)
    with pytest.raises(data.DataIntegrityError, match="data_batch_3.*md5"):
        read_cifar_batch(bad)


def test_allowed_globals_cannot_be_altered(tmp_path):
    # GLOBAL numpy.dtype, then BUILD with slot state {"func": 1}
    payload = b"\x80\x02cnumpy\ndtype\nN}X\x04\x00\x00\x00funcK\x01s\x86b."
    bad = tmp_path / "test_batch"
    bad.write_bytes(payload)
    with pytest.raises(data.DataIntegrityError, match="test_batch.*read-only"):
        read_cifar_batch(bad)
    assert data.raw._CIFAR_GLOBALS[("numpy", "dtype")].func is data.raw._dtype


def test_download_refuses_hostile_archive_member(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    member = pickle.dumps(_Touch(marker), protocol=2)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.size = len(member)
        tar.addfile(info, io.BytesIO(member))
    archive = buf.getvalue()
    digest = hashlib.md5(archive).hexdigest()
    entry = data.SOURCES["cifar10"]
    pinned = dataclasses.replace(entry.archive, md5=digest)
    monkeypatch.setitem(
        data.SOURCES, "cifar10", dataclasses.replace(entry, archive=pinned)
    )
    with pytest.raises(data.DataIntegrityError, match="data_batch_1.*refused"):
        data.download_raw("cifar10", tmp_path / "raw", fetch=lambda url: archive)
    assert not marker.exists()
    assert not list((tmp_path / "raw").rglob("*data_batch_1*"))


@pytest.mark.parametrize(
    ("name", "n_flips"),
    [("t10k-labels-idx1-ubyte.gz", 30), ("t10k-images-idx3-ubyte.gz", 6)],
)
def test_bit_flipped_mnist_always_raises_named_error(
    tmp_path, shared_data, name, n_flips
):
    src = (shared_data / "mnist" / name).read_bytes()
    ref = read_mnist_idx(shared_data / "mnist" / name)
    rng = np.random.default_rng(0)
    positions = [*range(10), *rng.integers(10, len(src), n_flips), len(src) - 1]
    bad, raised = tmp_path / name, 0
    for pos in positions:
        flipped = bytearray(src)
        flipped[pos] ^= int(rng.integers(1, 256))
        bad.write_bytes(flipped)
        try:
            got = read_mnist_idx(bad)
        except data.DataIntegrityError as err:
            assert str(bad) in str(err), err
            raised += 1
        else:  # a don't-care bit (gzip mtime, OS byte, ...): content unchanged
            np.testing.assert_array_equal(got, ref)
    assert raised >= len(positions) - 10


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda gz: gz[: len(gz) // 2], "truncated gzip stream"),
        (lambda gz: gz[:-4], "truncated gzip stream"),
        (lambda gz: gz[:5], "truncated gzip stream"),
        (lambda gz: b"", "truncated gzip stream"),
        (lambda gz: gz + b"\0", "after the end of the gzip stream"),
        (lambda gz: gz + gz, "after the end of the gzip stream"),
        (lambda gz: b"not gzip at all", "corrupt gzip stream"),
        (
            lambda gz: gzip.compress(gzip.decompress(gz)[:-1]),
            "has 10,007 bytes, expected 10,008",
        ),
    ],
    ids=[
        "half",
        "no-trailer",
        "header-only",
        "empty",
        "trailing-zero",
        "two-members",
        "not-gzip",
        "short-content",
    ],
)
def test_damaged_mnist_gzip_is_named(tmp_path, shared_data, change, message):
    name = "t10k-labels-idx1-ubyte.gz"
    bad = tmp_path / name
    bad.write_bytes(change((shared_data / "mnist" / name).read_bytes()))
    with pytest.raises(data.DataIntegrityError, match=message) as err:
        read_mnist_idx(bad)
    assert str(bad) in str(err.value)


def test_mnist_header_is_checked(tmp_path, shared_data, monkeypatch):
    """Even content with a matching checksum must have the expected header."""
    name = "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress((shared_data / "mnist" / name).read_bytes()))
    raw[3] = 3  # magic 2049 -> 2051
    bad = tmp_path / name
    bad.write_bytes(gzip.compress(bytes(raw)))
    monkeypatch.setitem(MNIST_FILES, name, hashlib.sha256(raw).hexdigest())
    with pytest.raises(data.DataIntegrityError, match=f"{name}: IDX header"):
        read_mnist_idx(bad)


def test_unknown_file_names_are_refused(tmp_path):
    for reader, name in [(read_mnist_idx, "x.gz"), (read_cifar_batch, "x")]:
        (tmp_path / name).write_bytes(b"")
        with pytest.raises(data.DataIntegrityError, match=f"{name}: not a"):
            reader(tmp_path / name)


def test_gzip_bomb_is_rejected_early_and_small(tmp_path, gzip_bomb):
    size = 200 * 2**20
    bomb = tmp_path / "train-images-idx3-ubyte.gz"
    gzip_bomb(bomb, size)
    assert bomb.stat().st_size < size / 500
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(data.DataIntegrityError, match="size cap of 47,040,016"):
            read_mnist_idx(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 10
    assert peak < 47_040_016 + 8 * 2**20 < size / 3


def test_search_dir_that_is_a_file(tmp_path, shared_data):
    not_dir = tmp_path / "data.tar"
    not_dir.write_bytes(b"")
    with pytest.raises(data.DataIntegrityError, match="data.tar' exists but is not a"):
        data.locate_raw("mnist", [not_dir, shared_data])
    assert data.locate_raw("mnist", [tmp_path / "absent", shared_data])[
        "mnist/t10k-labels-idx1-ubyte.gz"
    ]


def test_decoding_is_bit_identical_to_plain_readers(shared_data, mnist_raw, cifar_raw):
    """Reference: plain pickle / gzip on the trusted shared copy (old decoding)."""
    batches = []
    for name in CIFAR10_FILES:
        with open(shared_data / CIFAR_DIR / name, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        images = batch[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        batches.append((images, np.asarray(batch[b"labels"], np.int64)))
    for split, (images, labels) in zip(
        cifar_raw,
        [[np.concatenate(a) for a in zip(*batches[:5], strict=True)], batches[5]],
        strict=True,
    ):
        assert split.images.dtype == np.uint8 and split.labels.dtype == np.int64
        assert np.array_equal(split.images, images)
        assert np.array_equal(split.labels, labels)
    for split, prefix in zip(mnist_raw, ["train", "t10k"], strict=True):
        raw = {
            kind: gzip.decompress(
                (shared_data / "mnist" / f"{prefix}-{kind}.gz").read_bytes()
            )
            for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")
        }
        images = np.frombuffer(raw["images-idx3-ubyte"], np.uint8, offset=16)
        labels = np.frombuffer(raw["labels-idx1-ubyte"], np.uint8, offset=8)
        assert split.images.dtype == np.uint8 and split.labels.dtype == np.int64
        assert np.array_equal(split.images, images.reshape(-1, 28, 28, 1))
        assert np.array_equal(split.labels, labels)
