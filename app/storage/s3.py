"""The S3-compatible blob store (AWS S3, MinIO, moto...), through boto3.

An upload streams into a multipart upload at a temporary key while it is hashed and compressed,
so neither memory nor local disk ever holds the dataset (apart from the raw copy a validator
asks for). `commit` then copies it to its content address `PREFIX/blobs/ab/SHA.zst` (a
server-side copy, itself multipart for large objects) and deletes the temporary key. Temporary
keys and multipart uploads a crash left behind are removed by `clear_tmp` after a grace period.

Every storage error (endpoint down, access denied, 5xx) surfaces as StorageUnavailable.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlparse

import zstandard

from app.storage.base import StorageUnavailable, StoredBlob, StreamingWriter, restore_verified, verified

log = logging.getLogger("epiplex.storage.s3")
PART_BYTES = 8 << 20  # S3 wants >= 5 MiB for every part but the last; memory holds one part


def parse_blob_url(url: str) -> tuple[str, str]:
    """("bucket", "prefix") of s3://bucket/prefix; ValueError naming what is wrong otherwise."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"blob URL {url!r} is not of the form s3://BUCKET/PREFIX")
    return parsed.netloc, parsed.path.strip("/")


def _guarded(action):
    """Run `action()`, turning any boto error into StorageUnavailable with what failed."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return action()
    except (BotoCoreError, ClientError) as error:
        raise StorageUnavailable(f"object storage unavailable: {error}") from error


class S3BlobWriter(StreamingWriter):
    """Hashes and compresses chunks into a multipart upload at a temporary key."""

    def __init__(self, store: S3BlobStore, max_bytes: int, keep_raw: bool, tmp_dir: Path) -> None:
        token = uuid.uuid4().hex
        super().__init__(max_bytes, store.zstd_level,
                         tmp_dir / f"upload-{token}.raw" if keep_raw else None)
        self._store = store
        self._tmp_key = store.key(f"tmp/upload-{token}.zst")
        self._stored = 0
        self._pending = bytearray()
        self._parts: list[dict] = []
        self._upload_id: str | None = None
        self._completed = False

    def _keep(self, compressed: bytes) -> None:
        self._pending += compressed
        if len(self._pending) >= PART_BYTES:
            self._send_part()

    def _send_part(self) -> None:
        s3, bucket = self._store.client, self._store.bucket
        if self._upload_id is None:
            self._upload_id = _guarded(lambda: s3.create_multipart_upload(
                Bucket=bucket, Key=self._tmp_key)["UploadId"])
        number, body = len(self._parts) + 1, bytes(self._pending)
        etag = _guarded(lambda: s3.upload_part(Bucket=bucket, Key=self._tmp_key, PartNumber=number,
                                               UploadId=self._upload_id, Body=body)["ETag"])
        self._parts.append({"PartNumber": number, "ETag": etag})
        self._stored += len(body)
        self._pending.clear()

    def finish(self) -> str:
        """Send the last part and close the upload at the temporary key; returns the sha256."""
        self._pending += self._end_stream()
        s3, bucket = self._store.client, self._store.bucket
        if self._upload_id is None:  # small enough for one plain PUT
            body = bytes(self._pending)
            _guarded(lambda: s3.put_object(Bucket=bucket, Key=self._tmp_key, Body=body))
            self._stored += len(body)
            self._pending.clear()
        else:
            self._send_part()
            _guarded(lambda: s3.complete_multipart_upload(
                Bucket=bucket, Key=self._tmp_key, UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts}))
        self._completed = True
        self.sha256 = self._hash.hexdigest()
        return self.sha256

    def commit(self) -> StoredBlob:
        """Copy the temporary object to its content address (unless that blob exists already)."""
        sha256 = self.sha256 or self.finish()
        store = self._store
        if not store.exists(sha256):
            _guarded(lambda: store.client.copy({"Bucket": store.bucket, "Key": self._tmp_key},
                                               store.bucket, store.blob_key(sha256)))
        _guarded(lambda: store.client.delete_object(Bucket=store.bucket, Key=self._tmp_key))
        return StoredBlob(sha256=sha256, bytes=self._size, stored_bytes=self._stored)

    def close(self) -> None:
        """Drop the temporary object (or abandon the unfinished upload) and the raw copy.

        Best effort: with storage down, `clear_tmp` removes them later."""
        self._drop_raw_copy()
        s3, bucket = self._store.client, self._store.bucket
        try:
            if self._upload_id is not None and not self._completed:
                _guarded(lambda: s3.abort_multipart_upload(Bucket=bucket, Key=self._tmp_key,
                                                           UploadId=self._upload_id))
            elif self._completed:
                _guarded(lambda: s3.delete_object(Bucket=bucket, Key=self._tmp_key))
        except StorageUnavailable:
            pass


class S3BlobStore:
    """Blobs at `PREFIX/blobs/ab/SHA.zst`, objects at `PREFIX/objects/NAME`, uploads in flight at
    `PREFIX/tmp/`. The bucket is created when missing."""

    def __init__(self, url: str, tmp_dir: Path, endpoint_url: str | None = None, zstd_level: int = 3,
                 create_bucket: bool = True) -> None:
        import boto3
        from botocore.config import Config

        self.lock = threading.Lock()
        self.bucket, self.prefix = parse_blob_url(url)
        self.tmp_dir = Path(tmp_dir)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.zstd_level = zstd_level
        # Fail fast when storage is down: the client waits seconds, not minutes, for an answer.
        config = Config(connect_timeout=3, read_timeout=30, retries={"max_attempts": 2, "mode": "standard"})
        self.client = boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)
        if create_bucket:
            try:
                self._ensure_bucket()
            except StorageUnavailable:  # start anyway: uploads answer 503 until storage is back
                log.warning("object storage unreachable at start", exc_info=True)

    def _ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                raise StorageUnavailable(f"object storage unavailable: {error}") from error
            _guarded(lambda: self.client.create_bucket(Bucket=self.bucket))
        except Exception as error:
            raise StorageUnavailable(f"object storage unavailable: {error}") from error

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def blob_key(self, sha256: str) -> str:
        return self.key(f"blobs/{sha256[:2]}/{sha256}.zst")

    def exists(self, sha256: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self.blob_key(sha256))
            return True
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise StorageUnavailable(f"object storage unavailable: {error}") from error
        except Exception as error:
            raise StorageUnavailable(f"object storage unavailable: {error}") from error

    def writer(self, max_bytes: int, keep_raw: bool = True) -> S3BlobWriter:
        return S3BlobWriter(self, max_bytes, keep_raw, self.tmp_dir)

    def _decompressed(self, sha256: str, chunk_size: int) -> Iterator[bytes]:
        response = _guarded(lambda: self.client.get_object(Bucket=self.bucket, Key=self.blob_key(sha256)))
        reader = zstandard.ZstdDecompressor().stream_reader(response["Body"])
        while chunk := reader.read(chunk_size):
            yield chunk

    def iter_chunks(self, sha256: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The original bytes, streamed from storage, decompressed and sha-checked."""
        return verified(sha256, self._decompressed(sha256, chunk_size))

    def restore_to(self, sha256: str, destination: Path) -> Path:
        """Download a blob to a local file (for memory-mapped training) and verify it."""
        return restore_verified(sha256, self._decompressed(sha256, 1 << 20), destination)

    def delete(self, sha256: str) -> None:
        _guarded(lambda: self.client.delete_object(Bucket=self.bucket, Key=self.blob_key(sha256)))

    def _list(self, prefix: str) -> Iterator[dict]:
        paginator = self.client.get_paginator("list_objects_v2")
        pages = _guarded(lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=self.key(prefix))))
        for page in pages:
            yield from page.get("Contents", [])

    def list_blobs(self) -> Iterator[tuple[str, float]]:
        now = datetime.now(timezone.utc)
        for item in self._list("blobs/"):
            name = item["Key"].rsplit("/", 1)[-1]
            if name.endswith(".zst"):
                yield name[:-4], (now - item["LastModified"]).total_seconds()

    def clear_tmp(self, older_than_seconds: float = 0.0) -> None:
        """Remove temporary keys and abandon multipart uploads older than the given age.

        Unlike a local directory, other API processes may be uploading into the same bucket,
        so the service passes its GC grace period here instead of 0."""
        now = datetime.now(timezone.utc)
        for item in self._list("tmp/"):
            if (now - item["LastModified"]).total_seconds() >= older_than_seconds:
                _guarded(lambda: self.client.delete_object(Bucket=self.bucket, Key=item["Key"]))
        uploads = _guarded(lambda: self.client.list_multipart_uploads(
            Bucket=self.bucket, Prefix=self.key("tmp/")).get("Uploads", []))
        for upload in uploads:
            if (now - upload["Initiated"]).total_seconds() >= older_than_seconds:
                _guarded(lambda: self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]))
        cutoff = time.time() - older_than_seconds
        for path in self.tmp_dir.glob("upload-*.raw"):
            if older_than_seconds <= 0 or path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)

    def put_object(self, name: str, source: Path) -> None:
        # upload_file sends large files in multipart parts, streamed from disk.
        _guarded(lambda: self.client.upload_file(str(source), self.bucket, self.key(f"objects/{name}")))

    def get_objects(self, prefix: str, destination: Path) -> list[str]:
        destination.mkdir(parents=True, exist_ok=True)
        names = []
        for item in self._list(f"objects/{prefix}/"):
            name = item["Key"].rsplit("/", 1)[-1]
            partial = destination / f".{name}.{uuid.uuid4().hex}"
            _guarded(lambda: self.client.download_file(self.bucket, item["Key"], str(partial)))
            partial.replace(destination / name)
            names.append(name)
        return names

    def object_groups(self, prefix: str) -> list[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        base = self.key(f"objects/{prefix}/")
        pages = _guarded(lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=base, Delimiter="/")))
        return sorted(common["Prefix"][len(base):].rstrip("/") for page in pages
                      for common in page.get("CommonPrefixes", []))

    def delete_objects(self, prefix: str) -> None:
        for item in list(self._list(f"objects/{prefix}/")):
            _guarded(lambda: self.client.delete_object(Bucket=self.bucket, Key=item["Key"]))
