"""What a blob store offers the rest of the service, whatever holds the bytes (a directory today).

Blobs are content-addressed by the sha256 of their raw bytes; a writer streams an upload in,
hashing as it goes, and `commit` files it under that hash.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class BlobTooLarge(Exception):
    """The stream passed the configured maximum; the partial blob has been discarded."""


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    bytes: int
    stored_bytes: int


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
    """Where datasets' bytes live; the database only records their sha256."""

    def exists(self, sha256: str) -> bool: ...

    def writer(self, max_bytes: int, keep_raw: bool = True) -> BlobWriting: ...

    def iter_chunks(self, sha256: str, chunk_size: int = 1 << 20) -> Iterator[bytes]: ...

    def restore_to(self, sha256: str, destination: Path) -> Path: ...

    def delete(self, sha256: str) -> None: ...

    def clear_tmp(self) -> None: ...
