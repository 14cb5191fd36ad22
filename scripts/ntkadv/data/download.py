"""Download the canonical raw files (used only when no local copy is found).

URLs, archive digest and checks come from the source's registry entry
(`ntkadv.data.sources.SOURCES`); every file is decoded by the same safe readers as
local files (`ntkadv.data.raw`) and verified before it is written. Only the
download job imports this module (its task `download_raw_data` is reached lazily
through `ntkadv.data.task`), so an edit here reruns nothing else.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from ntkadv.data.raw import MAX_FILE_BYTES, DataIntegrityError, check_digest
from ntkadv.data.sources import PublicSource, public_source


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

    Where to fetch them (mirror URLs or one archive) and how to verify them come
    from the source's registry entry (`ntkadv.data.sources.SOURCES`). Every file is
    decoded by the same safe readers as local files (bounded gzip decompression,
    restricted unpickling) and verified (content checksum) before it is written, so
    an interrupted, corrupted or hostile download leaves nothing behind.

    Args:
        source: a public source ("mnist", "cifar10").
        data_dir: destination data directory (e.g. results/raw).
        fetch: url -> bytes (injectable for tests).

    Returns:
        Paths of the raw files.

    Raises:
        DataIntegrityError: naming the file, the URLs tried and the expected
            checksum when a file cannot be fetched or does not verify.
    """
    entry = public_source(source)
    dest = Path(data_dir) / entry.subdir
    if entry.archive is None:
        _from_mirrors(entry, dest, fetch)
    else:
        _from_archive(entry, dest, fetch)
    return [dest / name for name in entry.files]


def _from_mirrors(entry: PublicSource, dest: Path, fetch) -> None:
    """Each file from the first mirror that serves it verified."""
    for name, digest in entry.files.items():
        errors = []
        for base in entry.urls:
            try:
                payload = fetch(base + name)
                entry.check(payload, name, base + name, digest)
                _write_atomic(dest / name, payload)
                break
            except Exception as err:  # noqa: BLE001 - try the next mirror
                errors.append(f"{base + name}: {err}")
        else:
            raise DataIntegrityError(
                f"could not obtain {entry.label} file '{name}' (content checksum "
                f"{digest}); tried {errors}. Offline? Put the file in "
                f"{entry.subdir}/ under one of data.search_dirs."
            )


def _from_archive(entry: PublicSource, dest: Path, fetch) -> None:
    """The files from the source's archive, after checking its md5."""
    import tarfile

    url = entry.archive.url
    try:
        payload = fetch(url)
    except Exception as err:  # noqa: BLE001
        raise DataIntegrityError(
            f"could not download {entry.label} archive {url} ({err}); it provides "
            f"{sorted(entry.files)} (content checksums {dict(entry.files)}). "
            f"Offline? Put them in {entry.subdir}/ under one of data.search_dirs."
        ) from err
    check_digest(url, entry.archive.md5, hashlib.md5(payload).hexdigest(), "md5")
    with tarfile.open(fileobj=io.BytesIO(payload), mode="r:gz") as tar:
        for name, digest in entry.files.items():
            member_name = f"{entry.archive.folder}/{name}"
            label = f"{url}:{member_name}"
            try:
                member = tar.extractfile(member_name)
                data = member.read(MAX_FILE_BYTES + 1)
            except (KeyError, AttributeError, tarfile.TarError) as err:
                raise DataIntegrityError(f"{label}: missing ({err})") from err
            entry.check(data, name, label, digest)  # safe parse + content digest
            _write_atomic(dest / name, data)


def download_raw_data(
    inputs: dict, outputs: dict, settings: None, ids: dict[str, str], log
) -> None:
    """Rule download_raw_data (reached as ``ntkadv.data.task.download_raw_data``):
    fetch the raw files of source ``ids["source"]`` into the rule's output folder
    results/raw/{source} (the registry's ``subdir`` below results/raw)."""
    files = download_raw(ids["source"], Path(outputs["raw"]).parent)
    log.info("downloaded and verified %s", [str(f) for f in files])
