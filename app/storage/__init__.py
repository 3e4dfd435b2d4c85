"""Blob storage: the interface (`base`), the local-directory backend (`local`, the default), the
S3-compatible one (`s3`), and `open_storage` that picks one."""
from __future__ import annotations

from pathlib import Path

from app.storage.base import (BlobCorrupt, BlobStorage, BlobTooLarge, BlobWriting, StorageUnavailable,
                              StoredBlob)
from app.storage.local import BlobStore, BlobWriter

__all__ = ["BlobCorrupt", "BlobStorage", "BlobStore", "BlobTooLarge", "BlobWriter", "BlobWriting",
           "StorageUnavailable", "StoredBlob", "open_storage"]


def open_storage(blob_url: str | None, blob_dir: Path, tmp_dir: Path, endpoint_url: str | None = None,
                 zstd_level: int = 3) -> BlobStorage:
    """The S3 store for an s3:// `blob_url`, else the local directory `blob_dir`."""
    if blob_url:
        from app.storage.s3 import S3BlobStore

        return S3BlobStore(blob_url, tmp_dir, endpoint_url, zstd_level)
    return BlobStore(blob_dir, tmp_dir, zstd_level)
