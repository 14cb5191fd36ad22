"""Hostile and damaged files at smoke scale, through the workflow: a pickle that
would run code in the CIFAR-10 data directory, a bit-flipped MNIST gzip, a scaled
(content digest) and a truncated Gram matrix. Each fails its job with a message
naming the file, leaves no output, and runs no code from data (a harmless marker
file stays absent).
"""

from __future__ import annotations

import pathlib
import pickle
import shutil

import h5py
import pytest
from test_workflow import REPO, snakemake, write_config

SMOKE = REPO / "tests/config/smoke.yaml"
CIFAR_DIR = pathlib.Path("cifar10/cifar-10-batches-py")


class _Touch:
    """A pickle payload that creates `path` when unpickled (the marker)."""

    def __init__(self, path: pathlib.Path):
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (self.path,))


def _data_copy(tmp_path, shared_data):
    """A writable copy of the shared data directory."""
    copy = tmp_path / "data"
    shutil.copytree(shared_data, copy)
    return copy


def test_hostile_cifar_pickle_is_refused_and_runs_nothing(tmp_path, shared_data):
    data = _data_copy(tmp_path, shared_data)
    marker = tmp_path / "pwned"
    (data / CIFAR_DIR / "data_batch_1").write_bytes(pickle.dumps(_Touch(marker)))
    cfg = write_config(
        tmp_path, SMOKE, **{"data.search_dirs": [str(data)], "data.download": False}
    )
    proc = snakemake(tmp_path, cfg, "results/data/cifar2.h5", check=False)
    assert proc.returncode != 0
    log = (tmp_path / "results/logs/prepare_dataset/cifar2.log").read_text()
    assert "data_batch_1: refused to load pickled global 'pathlib.Path.touch'" in log
    assert "nothing was executed" in log
    assert not marker.exists()
    assert not (tmp_path / "results/data/cifar2.h5").exists()


@pytest.mark.parametrize(
    "damage, named",
    [("bit_flip", "corrupt"), ("bomb", "size cap of 47,040,016")],
)
def test_damaged_mnist_gzip_is_named(tmp_path, shared_data, gzip_bomb, damage, named):
    """One flipped bit, or a gzip bomb in place of the training images: the job
    fails naming the file and what is wrong, and writes nothing."""
    data = _data_copy(tmp_path, shared_data)
    gz = data / "mnist/train-images-idx3-ubyte.gz"
    if damage == "bomb":
        gz.unlink()
        gzip_bomb(gz, 200 * 2**20)
    else:
        raw = bytearray(gz.read_bytes())
        raw[len(raw) // 2] ^= 0x40
        gz.write_bytes(bytes(raw))
    cfg = write_config(
        tmp_path, SMOKE, **{"data.search_dirs": [str(data)], "data.download": False}
    )
    proc = snakemake(tmp_path, cfg, "results/data/mnist.h5", check=False)
    assert proc.returncode != 0
    log = (tmp_path / "results/logs/prepare_dataset/mnist.log").read_text()
    assert "train-images-idx3-ubyte.gz:" in log and named in log, log[-2000:]
    line = [x for x in proc.stderr.splitlines() if x.startswith("rule prepare_dataset")]
    assert line and "train-images-idx3-ubyte.gz" in line[0], proc.stderr[-2000:]
    assert not (tmp_path / "results/data/mnist.h5").exists()


def test_tampered_and_truncated_gram_fail_the_eigendecomposition(tmp_path):
    """A Gram scaled by 2 on disk (still symmetric and PSD) fails on its content
    digest, a truncated one as unreadable; restored, the same job runs."""
    cfg = write_config(tmp_path, SMOKE)
    gram = tmp_path / "results/ntk/mnist/fc1/gram.h5"
    eigh = "results/spectra/mnist/fc1/eigh.h5"
    log = tmp_path / "results/logs/eigendecompose_gram/mnist/fc1.log"
    snakemake(tmp_path, cfg, str(gram.relative_to(tmp_path)))
    original = gram.read_bytes()
    with h5py.File(gram, "r+") as f:  # x 2: valid HDF5, symmetric, PSD
        key = "k_train_train"
        f[key][...] = 2 * f[key][()]
    proc = snakemake(tmp_path, cfg, eigh, check=False)
    assert proc.returncode != 0
    text = log.read_text()
    assert "H5IntegrityError" in text
    assert "gram.h5: dataset 'k_train_train' does not match the content digest" in text
    assert "rule compute_ntk_gram: delete it and rerun" in text
    assert not (tmp_path / eigh).exists()
    gram.write_bytes(original[: len(original) // 3])  # truncated
    proc = snakemake(tmp_path, cfg, eigh, check=False)
    assert proc.returncode != 0
    text = log.read_text()
    assert "gram.h5: cannot read this HDF5 file" in text
    assert "compute_ntk_gram" in text
    assert not (tmp_path / eigh).exists()
    gram.write_bytes(original)  # as written: the digests agree
    snakemake(tmp_path, cfg, eigh)
    assert (tmp_path / eigh).exists()
