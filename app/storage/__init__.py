"""Blob storage: the interface (`base`) and the local-directory backend (`local`)."""
from app.storage.base import BlobStorage, BlobTooLarge, BlobWriting, StoredBlob
from app.storage.local import BlobStore, BlobWriter

__all__ = ["BlobStorage", "BlobStore", "BlobTooLarge", "BlobWriter", "BlobWriting", "StoredBlob"]
