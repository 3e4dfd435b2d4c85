"""The local-directory blob store: sha256 computed while streaming, zstd-compressed at rest."""
from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import zstandard

from app.storage.base import StoredBlob, StreamingWriter, restore_verified, verified


class BlobWriter(StreamingWriter):
    """Hashes and compresses chunks into a temp file; `commit` files it by hash.

    Also keeps a raw copy next to it, so the caller can validate the content against its
    declared format before the upload is accepted; `close` removes the temp files.
    """

    def __init__(self, store: BlobStore, max_bytes: int, keep_raw: bool = True) -> None:
        token = uuid.uuid4().hex
        super().__init__(max_bytes, store.zstd_level,
                         store.tmp_dir / f"upload-{token}.raw" if keep_raw else None)
        self._store = store
        self._compressed_path = store.tmp_dir / f"upload-{token}.zst"
        self._compressed_file = open(self._compressed_path, "wb")

    def _keep(self, compressed: bytes) -> None:
        self._compressed_file.write(compressed)

    def finish(self) -> str:
        """Flush everything to disk; returns (and keeps in `sha256`) the hash of what was written."""
        self._compressed_file.write(self._end_stream())
        self._compressed_file.close()
        self.sha256 = self._hash.hexdigest()
        return self.sha256

    def commit(self) -> StoredBlob:
        """Move the compressed file to its content address (a no-op if that blob exists)."""
        sha256 = self.sha256 or self.finish()
        target = self._store.path_for(sha256)
        if target.exists():
            self._compressed_path.unlink(missing_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(self._compressed_path, "rb") as handle:
                os.fsync(handle.fileno())  # durable before we tell the client it is stored
            os.replace(self._compressed_path, target)
            _fsync_dir(target.parent)  # and the rename with it
        return StoredBlob(sha256=sha256, bytes=self._size, stored_bytes=target.stat().st_size)

    def close(self) -> None:
        if not self._compressed_file.closed:
            self._compressed_file.close()
        self._compressed_path.unlink(missing_ok=True)
        self._drop_raw_copy()


class BlobStore:
    """Blobs under `root/ab/abcdef...zst`, named by the sha256 of their uncompressed bytes;
    named objects under `root/objects/`.

    `lock` is held by whoever adds or drops a reference to a blob (commit + insert a dataset,
    delete a dataset + its unused blob), so a delete never removes a blob a new upload just reused.
    """

    def __init__(self, root: Path, tmp_dir: Path, zstd_level: int = 3) -> None:
        self.lock = threading.Lock()
        self.root = Path(root)
        self.tmp_dir = Path(tmp_dir)
        self.zstd_level = zstd_level
        self.root.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def path_for(self, sha256: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}.zst"

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).exists()

    def writer(self, max_bytes: int, keep_raw: bool = True) -> BlobWriter:
        return BlobWriter(self, max_bytes, keep_raw)

    def iter_chunks(self, sha256: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The original bytes, decompressed on the fly and sha-checked (BlobCorrupt at the end)."""
        return verified(sha256, self._decompressed(sha256, chunk_size))

    def _decompressed(self, sha256: str, chunk_size: int) -> Iterator[bytes]:
        with open(self.path_for(sha256), "rb") as handle:
            reader = zstandard.ZstdDecompressor().stream_reader(handle)
            while chunk := reader.read(chunk_size):
                yield chunk

    def restore_to(self, sha256: str, destination: Path) -> Path:
        """Decompress a blob to `destination` (for libraries that want a path) and verify it."""
        return restore_verified(sha256, self._decompressed(sha256, 1 << 20), destination)

    def delete(self, sha256: str) -> None:
        self.path_for(sha256).unlink(missing_ok=True)

    def clear_tmp(self, older_than_seconds: float = 0.0) -> None:
        """Remove leftovers of uploads interrupted by a crash (those older than the given age)."""
        cutoff = time.time() - older_than_seconds
        for path in self.tmp_dir.glob("upload-*"):
            if older_than_seconds <= 0 or _mtime(path) < cutoff:
                path.unlink(missing_ok=True)

    def list_blobs(self) -> Iterator[tuple[str, float]]:
        now = time.time()
        for path in self.root.glob("??/*.zst"):
            yield path.stem, now - _mtime(path)

    def _object_path(self, name: str) -> Path:
        return self.root / "objects" / name

    def put_object(self, name: str, source: Path) -> None:
        target = self._object_path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
        shutil.copyfile(source, partial)
        os.replace(partial, target)  # readers never see half a file

    def get_objects(self, prefix: str, destination: Path) -> list[str]:
        folder = self._object_path(prefix)
        destination.mkdir(parents=True, exist_ok=True)
        names = [p.name for p in folder.glob("*") if p.is_file() and not p.name.startswith(".")] \
            if folder.is_dir() else []
        for name in names:
            shutil.copyfile(folder / name, destination / name)
        return names

    def delete_objects(self, prefix: str) -> None:
        shutil.rmtree(self._object_path(prefix), ignore_errors=True)

    def object_groups(self, prefix: str) -> list[str]:
        folder = self._object_path(prefix)
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # removed by someone else meanwhile
        return time.time()



def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
