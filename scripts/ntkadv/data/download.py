"""Download the canonical raw files (used only when no local copy is found).

Every file is decoded by the same safe readers as local files (`ntkadv.data.raw`) and
verified before it is written.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from ntkadv.data.raw import (
    CIFAR10_FILES,
    CIFAR10_TAR_MD5,
    CIFAR10_URL,
    CIFAR_MAX_BYTES,
    MNIST_FILES,
    MNIST_URLS,
    RAW_SUBDIR,
    DataIntegrityError,
    check_digest,
    decode_cifar,
    inflate_idx,
)


def _fetch(url: str, timeout: float = 60.0, max_bytes: int = 256 * 2**20) -> bytes:
    import urllib.request

    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
        payload = response.read(max_bytes + 1)
    if len(payload) > max_bytes:
        raise DataIntegrityError(f"{url}: larger than {max_bytes:,} bytes")
    return payload


def _write_atomic(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_bytes(payload)
    tmp.replace(path)


def download_raw(source: str, data_dir: str | Path, fetch=_fetch) -> list[Path]:
    """Download the raw files of `source` into `data_dir` (shared/data layout).

    Every file is decoded by the same safe readers as local files (bounded gzip
    decompression, restricted unpickling) and verified (content checksum) before
    it is written, so an interrupted, corrupted or hostile download leaves
    nothing behind.

    Args:
        source: "mnist" or "cifar10".
        data_dir: destination data directory (e.g. results/raw).
        fetch: url -> bytes (injectable for tests).

    Returns:
        Paths of the raw files.

    Raises:
        DataIntegrityError: naming the file, the URLs tried and the expected
            checksum when a file cannot be fetched or does not verify.
    """
    import tarfile

    dest = Path(data_dir) / RAW_SUBDIR[source]
    if source == "mnist":
        for name, sha in MNIST_FILES.items():
            errors = []
            for base in MNIST_URLS:
                try:
                    payload = fetch(base + name)
                    inflate_idx(io.BytesIO(payload), name, base + name)
                    _write_atomic(dest / name, payload)
                    break
                except Exception as err:  # noqa: BLE001 - try the next mirror
                    errors.append(f"{base + name}: {err}")
            else:
                raise DataIntegrityError(
                    f"could not obtain MNIST file '{name}' (content sha256 {sha}); "
                    f"tried {errors}. Offline? Put the file in mnist/ under one of "
                    "data.search_dirs."
                )
        return [dest / name for name in MNIST_FILES]
    try:
        payload = fetch(CIFAR10_URL)
    except Exception as err:  # noqa: BLE001
        raise DataIntegrityError(
            f"could not download CIFAR-10 archive {CIFAR10_URL} ({err}); it provides "
            f"{sorted(CIFAR10_FILES)} (binary-row md5s {CIFAR10_FILES}). Offline? Put "
            "them in cifar10/cifar-10-batches-py/ under one of data.search_dirs."
        ) from err
    check_digest(CIFAR10_URL, CIFAR10_TAR_MD5, hashlib.md5(payload).hexdigest(), "md5")
    with tarfile.open(fileobj=io.BytesIO(payload), mode="r:gz") as tar:
        for name in CIFAR10_FILES:
            label = f"{CIFAR10_URL}:cifar-10-batches-py/{name}"
            try:
                member = tar.extractfile(f"cifar-10-batches-py/{name}")
                batch = member.read(CIFAR_MAX_BYTES + 1)
            except (KeyError, AttributeError, tarfile.TarError) as err:
                raise DataIntegrityError(f"{label}: missing ({err})") from err
            decode_cifar(batch, name, label)  # safe parse + content md5
            _write_atomic(dest / name, batch)
    return [dest / name for name in CIFAR10_FILES]
