"""What a blob store offers the rest of the service, whatever holds the bytes (a local directory
or an S3-compatible bucket).

Blobs are content-addressed by the sha256 of their raw bytes; a writer streams an upload in,
hashing as it goes, and `commit` files it under that hash. Reads re-hash what they return.
Beside blobs, a store keeps a few named files ("objects": saved estimator runs of a job) that
every node running that job must reach.
"""
from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import zstandard


class BlobTooLarge(Exception):
    """The stream passed the configured maximum; the partial blob has been discarded."""


class StorageUnavailable(Exception):
    """The storage service could not be reached or refused the request; nothing was stored."""


class BlobCorrupt(OSError):
    """A blob's content no longer hashes to its name."""


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    bytes: int
    stored_bytes: int


class StreamingWriter:
    """What every store's writer does with a chunk: enforce the size limit, hash it, keep the
    raw copy a format validator asks for, and compress it. `_keep` keeps the compressed bytes."""

    def __init__(self, max_bytes: int, zstd_level: int, raw_path: Path | None) -> None:
        self._max_bytes = max_bytes
        self.raw_path = raw_path
        self._raw_file = open(raw_path, "wb") if raw_path else None
        self._hash = hashlib.sha256()
        self._size = 0
        self._compressor = zstandard.ZstdCompressor(level=zstd_level).compressobj()
        self.sha256: str | None = None  # set by finish()

    @property
    def bytes_written(self) -> int:
        return self._size

    def write(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size > self._max_bytes:
            raise BlobTooLarge(f"upload exceeds the maximum of {self._max_bytes} bytes")
        self._hash.update(chunk)
        if self._raw_file:
            self._raw_file.write(chunk)
        self._keep(self._compressor.compress(chunk))

    def _keep(self, compressed: bytes) -> None:
        raise NotImplementedError

    def _end_stream(self) -> bytes:
        """Close the raw copy; returns the compressor's last bytes."""
        if self._raw_file:
            self._raw_file.close()
        return self._compressor.flush()

    def _drop_raw_copy(self) -> None:
        if self._raw_file and not self._raw_file.closed:
            self._raw_file.close()
        if self.raw_path:
            self.raw_path.unlink(missing_ok=True)


class BlobWriting(Protocol):
    """One upload in progress (`BlobStorage.writer`)."""

    raw_path: Path | None
    sha256: str | None

    @property
    def bytes_written(self) -> int: ...

    def write(self, chunk: bytes) -> None: ...

    def finish(self) -> str: ...

    def commit(self) -> StoredBlob: ...

    def close(self) -> None: ...


class BlobStorage(Protocol):
    """Where datasets' bytes live; the database only records their sha256.

    `lock` is held by whoever adds or drops a reference to a blob (commit + insert a dataset,
    delete a dataset + its unused blob, garbage collection)."""

    lock: threading.Lock

    def exists(self, sha256: str) -> bool: ...

    def writer(self, max_bytes: int, keep_raw: bool = True) -> BlobWriting: ...

    def iter_chunks(self, sha256: str, chunk_size: int = 1 << 20) -> Iterator[bytes]: ...

    def restore_to(self, sha256: str, destination: Path) -> Path: ...

    def delete(self, sha256: str) -> None: ...

    def clear_tmp(self, older_than_seconds: float = 0.0) -> None: ...

    def list_blobs(self) -> Iterator[tuple[str, float]]:
        """(sha256, age in seconds) of every committed blob."""

    def put_object(self, name: str, source: Path) -> None: ...

    def get_objects(self, prefix: str, destination: Path) -> list[str]:
        """Copy every object named `prefix/...` into `destination`; returns their base names."""

    def delete_objects(self, prefix: str) -> None: ...

    def object_groups(self, prefix: str) -> list[str]:
        """The names NAME of the groups of objects `prefix/NAME/...`."""


def verified(sha256: str, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Pass `chunks` through, raising BlobCorrupt at the end if they do not hash to `sha256`."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
        yield chunk
    if digest.hexdigest() != sha256:
        raise BlobCorrupt(f"blob {sha256} is corrupt: content hashes to {digest.hexdigest()}")


def restore_verified(sha256: str, chunks: Iterable[bytes], destination: Path) -> Path:
    """Write `chunks` to `destination`, removing it again if they fail the sha check."""
    try:
        with open(destination, "wb") as out:
            for chunk in verified(sha256, chunks):
                out.write(chunk)
    except BaseException:
        Path(destination).unlink(missing_ok=True)
        raise
    return destination
