"""Tests of ntkadv.h5io's integrity checks: content digests, identity, lineage."""

from __future__ import annotations

import errno
import hashlib
import shutil

import h5py
import numpy as np
import pytest

from ntkadv import h5io


@pytest.fixture(autouse=True)
def _fresh_process(monkeypatch):
    """Each test starts as a new job process: nothing opened yet."""
    monkeypatch.setattr(h5io, "_OPENED", {})
    monkeypatch.setattr(h5io, "_ON_DISK", {})


def _gram(rng, n=6, m=3):
    x = rng.standard_normal((n + m, 4))
    k = x @ x[:n].T
    return {"k_train_train": k[:n], "k_test_train": k[n:]}


def _forget():
    """As a new process would: forget which files were opened."""
    h5io._OPENED.clear()


def test_digest_is_sha256_of_dtype_shape_and_bytes():
    a = np.arange(12, dtype=np.float64).reshape(3, 4)
    ref = hashlib.sha256(b"<f8(3, 4)" + a.tobytes()).hexdigest()
    assert h5io.array_digest(a) == ref
    assert h5io.array_digest(a.T) != ref  # same bytes in memory, other array
    assert h5io.array_digest(a.astype(np.float32)) != ref
    assert h5io.array_digest(a.reshape(4, 3)) != ref


def test_streamed_digest_equals_in_memory_digest(tmp_path, monkeypatch):
    monkeypatch.setattr(h5io, "_DIGEST_BLOCK_BYTES", 3 * 5 * 8)  # 3 rows a block
    a = np.random.default_rng(0).standard_normal((10, 5))
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.create_dataset("a", data=a, chunks=(2, 5))
        assert h5io.dataset_digest(f["a"]) == h5io.array_digest(a)


def test_every_dataset_carries_its_digest_and_reads_back(tmp_path):
    arrays = {
        "k": np.random.default_rng(1).standard_normal((4, 4)),
        "group/mask": np.array([True, False, True]),
        "scalar": np.float64(2.5),
        "names": np.array(["fc1", "conv"], dtype=object),
        "empty": np.zeros((0, 3)),
    }
    path = tmp_path / "f.h5"
    h5io.write(path, arrays, {"note": "x"})
    with h5py.File(path) as f:
        for key in arrays:
            assert f[key].attrs["sha256"] == h5io.dataset_digest(f[key])
    got = h5io.read(path, ["k", "names", "empty"])
    assert got["names"].tolist() == [b"fc1", b"conv"]
    np.testing.assert_array_equal(got["k"], arrays["k"])
    _forget()
    assert h5io.read(path, ["group/mask"])["group/mask"].tolist() == [1, 0, 1]
    _forget()
    with h5io.open_read(path) as f:
        assert f["scalar"][()] == 2.5


def test_atomic_h5_digests_datasets_filled_in_place(tmp_path):
    k = np.random.default_rng(2).standard_normal((5, 5))
    path = tmp_path / "g.h5"
    with h5io.atomic_h5(path) as f:
        out = f.create_dataset("k", (5, 5), dtype=np.float64, chunks=(2, 2))
        for i in range(5):
            out[i] = k[i]
    with h5py.File(path) as f:
        assert f["k"].attrs["sha256"] == h5io.array_digest(k)


def test_scaled_gram_fails_naming_file_rule_and_fix(tmp_path):
    """A Gram x 2 is still symmetric PSD: only the digest tells."""
    path = tmp_path / "results/ntk/mnist/fc1/gram.h5"
    h5io.write(path, _gram(np.random.default_rng(3)))
    assert h5io.read(path)  # untouched: fine
    with h5py.File(path, "r+") as f:
        f["k_train_train"][...] = 2 * f["k_train_train"][()]
    _forget()
    with pytest.raises(h5io.H5IntegrityError) as err:
        h5io.read(path, ["k_train_train"])
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: dataset 'k_train_train' does not match")
    assert "rule compute_ntk_gram: delete it and rerun" in msg
    _forget()
    with pytest.raises(h5io.H5IntegrityError, match="k_train_train"):
        with h5io.open_read(path):
            pass
    # a dataset left as written still reads (read() checks what it returns)
    _forget()
    assert h5io.read(path, ["k_test_train"])["k_test_train"].shape == (3, 6)


def test_missing_digest_is_refused(tmp_path):
    path = tmp_path / "results/spectra/mnist/fc1/eigh.h5"
    path.parent.mkdir(parents=True)
    with h5py.File(path, "w") as f:
        f["eigvals"] = np.ones(3)
    with pytest.raises(h5io.H5IntegrityError, match="no content digest") as err:
        h5io.read(path)
    assert "eigendecompose_gram" in str(err.value)


def test_file_swapped_in_from_another_target_is_refused(tmp_path):
    cifar = tmp_path / "results/ntk/cifar2/fc1/gram.h5"
    mnist = tmp_path / "results/ntk/mnist/fc1/gram.h5"
    h5io.write(cifar, _gram(np.random.default_rng(4)))
    mnist.parent.mkdir(parents=True)
    shutil.copy(cifar, mnist)
    assert h5io.read_attrs(cifar)["written_as"] == "ntk/cifar2/fc1/gram.h5"
    with pytest.raises(h5io.H5IntegrityError, match="written as results/ntk/cifar2"):
        h5io.read(mnist)
    # the whole results/ folder moved elsewhere is still the same target
    moved = tmp_path / "elsewhere/results"
    shutil.copytree(tmp_path / "results", moved)
    (moved / "ntk/mnist/fc1/gram.h5").unlink()
    assert h5io.read(moved / "ntk/cifar2/fc1/gram.h5")


def _gram_then_eigh(root, rng):
    """Write a Gram, then (as eigendecompose_gram does) read it and write eigh."""
    gram, eigh = root / "ntk/mnist/fc1/gram.h5", root / "spectra/mnist/fc1/eigh.h5"
    h5io.write(gram, _gram(rng))
    _forget()
    k = h5io.read(gram, ["k_train_train"])["k_train_train"]
    vals, vecs = np.linalg.eigh(k)
    h5io.write(eigh, {"eigvals": vals, "eigvecs": vecs})
    _forget()
    return gram, eigh


def test_downstream_file_records_its_sources(tmp_path):
    gram, eigh = _gram_then_eigh(tmp_path / "results", np.random.default_rng(5))
    with h5py.File(gram) as f:
        digest = h5io.file_digest(f)
    assert h5io.read_attrs(eigh)["sources"] == {"ntk/mnist/fc1/gram.h5": digest}
    assert h5io.read_attrs(gram)["sources"] == {}  # no other rule's file read
    _forget()
    h5io.read(gram)
    h5io.read(eigh)  # consistent: fine


@pytest.mark.parametrize("gram_first", [True, False])
def test_gram_swapped_for_another_runs_is_caught_by_a_reader_of_both(
    tmp_path, gram_first
):
    """attack_ntk reads k_test_train and eigh.h5: with the Gram replaced by another
    run's (same target, so `written_as` agrees; own digests valid), eigh.h5 is stale
    and is named, whichever file is opened first (eigh.h5 opened first is already
    caught against the Gram on disk)."""
    gram, eigh = _gram_then_eigh(tmp_path / "a/results", np.random.default_rng(6))
    other, _ = _gram_then_eigh(tmp_path / "b/results", np.random.default_rng(7))
    shutil.copy(other, gram)
    first, second = (gram, eigh) if gram_first else (eigh, gram)
    with pytest.raises(h5io.H5IntegrityError) as err:
        h5io.read_attrs(first)
        h5io.read(second)
    msg = str(err.value)
    assert msg.startswith(f"{eigh}: it was computed from a different")
    assert "results/ntk/mnist/fc1/gram.h5" in msg
    assert "rule eigendecompose_gram: delete it and rerun" in msg


def test_file_from_another_run_read_alone_is_caught_by_its_sources(tmp_path):
    """eigendecompose_gram reads only gram.h5: a Gram copied in from another run
    (same target, other training data; own digests and written_as valid) records a
    data file that is not the one on disk, and opening it names the Gram."""
    runs = {}
    for name, seed in (("a", 10), ("b", 11)):
        root = tmp_path / name / "results"
        data, gram = root / "data/mnist.h5", root / "ntk/mnist/fc1/gram.h5"
        h5io.write(data, {"x_train": np.random.default_rng(seed).random((6, 4))})
        _forget()
        h5io.read(data)
        h5io.write(gram, _gram(np.random.default_rng(seed)))
        _forget()
        runs[name] = (data, gram)
    assert "data/mnist.h5" in h5io.read_attrs(runs["a"][1])["sources"]
    _forget()
    h5io.read(runs["a"][1])  # consistent with its own data: fine
    _forget()
    shutil.copy(runs["b"][1], runs["a"][1])
    with pytest.raises(h5io.H5IntegrityError) as err:
        h5io.read(runs["a"][1], ["k_train_train"])
    msg = str(err.value)
    assert msg.startswith(f"{runs['a'][1]}: it was computed from a different")
    assert "results/data/mnist.h5 than the one now on disk" in msg
    assert "rule compute_ntk_gram: delete it and rerun" in msg
    _forget()
    runs["a"][0].unlink()  # a source that no longer exists is not checked
    h5io.read(runs["a"][1], ["k_train_train"])


def test_disk_full_mid_write_leaves_the_old_file_and_no_temporary(tmp_path):
    """ENOSPC while a dataset is being filled (after the free-space check passed):
    the error propagates, the temporary is removed, the previous output stays."""
    path = tmp_path / "results/ntk/mnist/fc1/gram.h5"
    h5io.write(path, _gram(np.random.default_rng(8)))
    before = path.read_bytes()
    with pytest.raises(OSError) as err:
        with h5io.atomic_h5(path) as f:
            out = f.create_dataset("k_train_train", (6, 6), dtype=np.float64)
            out[0] = np.ones(6)
            raise OSError(errno.ENOSPC, "No space left on device")
    assert err.value.errno == errno.ENOSPC
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["gram.h5"]


def test_no_room_is_refused_before_a_temporary_exists(tmp_path, monkeypatch):
    """The free-space check runs before the temporary is created."""
    path = tmp_path / "results/ntk/mnist/fc1/gram.h5"
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(
        shutil, "disk_usage", lambda _: type(usage)(usage.total, usage.total, 0)
    )
    with pytest.raises(OSError, match="no space left for gram.h5") as err:
        with h5io.atomic_h5(path, expected_bytes=8):
            pytest.fail("the write started")
    assert err.value.errno == errno.ENOSPC
    assert list(path.parent.iterdir()) == []
