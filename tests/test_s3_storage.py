"""Blob storage on a real S3-compatible server (moto_server), garbage collection on both backends,
and the service with its blobs in a bucket: upload, download, a job scored from S3, and 503 with
nothing recorded when storage is down."""
from __future__ import annotations

import hashlib
import os
import uuid

import httpx
import pytest
import zstandard

from app.core.db import make_engine, make_session_factory, run_migrations
from app.core.ids import new_id
from app.core.models import Dataset
from app.storage import BlobCorrupt, BlobStore, StorageUnavailable
from app.storage.gc import collect_garbage
from app.storage.s3 import S3BlobStore, parse_blob_url
from app.testing import ServiceProcess, free_port

pytestmark = pytest.mark.s3

OCTET = {"content-type": "application/octet-stream"}  # raw uploads declare their type (CORS-safe)


def _s3_store(moto_server, tmp_path, prefix: str = "p") -> S3BlobStore:
    return S3BlobStore(f"s3://b-{uuid.uuid4().hex[:12]}/{prefix}", tmp_path / "tmp", moto_server.url)


def _put(store, data: bytes) -> str:
    writer = store.writer(len(data), keep_raw=False)
    try:
        for start in range(0, len(data), 1 << 20):
            writer.write(data[start:start + (1 << 20)])
        writer.finish()
        return writer.commit().sha256
    finally:
        writer.close()


def test_blob_url_must_name_a_bucket():
    assert parse_blob_url("s3://data/epiplex/blobs/") == ("data", "epiplex/blobs")
    with pytest.raises(ValueError, match="s3://BUCKET/PREFIX"):
        parse_blob_url("/var/data")


def test_multipart_upload_round_trips_and_lands_at_its_content_address(moto_server, tmp_path):
    store = _s3_store(moto_server, tmp_path)
    data = os.urandom(12 << 20)  # incompressible: two multipart parts of the compressed stream
    sha = _put(store, data)
    assert sha == hashlib.sha256(data).hexdigest() and store.exists(sha)
    keys = [item["Key"] for item in store._list("")]
    assert keys == [f"p/blobs/{sha[:2]}/{sha}.zst"]  # the temporary key is gone
    assert b"".join(store.iter_chunks(sha)) == data
    restored = store.restore_to(sha, tmp_path / "restored")
    assert restored.read_bytes() == data
    assert [name for name, _ in store.list_blobs()] == [sha]
    assert _put(store, data) == sha and len(list(store._list(""))) == 1  # same bytes: one blob


def test_a_blob_whose_content_changed_fails_its_sha_check(moto_server, tmp_path):
    store = _s3_store(moto_server, tmp_path)
    sha = _put(store, b"the original content " * 100)
    store.client.put_object(Bucket=store.bucket, Key=store.blob_key(sha),
                            Body=zstandard.ZstdCompressor().compress(b"tampered content " * 100))
    with pytest.raises(BlobCorrupt, match=f"blob {sha} is corrupt"):
        store.restore_to(sha, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # a corrupt copy is never left for training
    with pytest.raises(BlobCorrupt):
        b"".join(store.iter_chunks(sha))


def test_run_state_objects_round_trip(moto_server, tmp_path):
    store = _s3_store(moto_server, tmp_path)
    (tmp_path / "run-1.json").write_text('{"seed": 0}')
    store.put_object("runs/job_a/run-1.json", tmp_path / "run-1.json")
    assert store.get_objects("runs/job_a", tmp_path / "copy") == ["run-1.json"]
    assert (tmp_path / "copy" / "run-1.json").read_text() == '{"seed": 0}'
    assert store.get_objects("runs/job_b", tmp_path / "none") == []
    store.put_object("runs/job_b/run-2.json", tmp_path / "run-1.json")
    assert store.object_groups("runs") == ["job_a", "job_b"]
    store.delete_objects("runs/job_a")
    assert store.get_objects("runs/job_a", tmp_path / "again") == []
    assert store.object_groups("runs") == ["job_b"]


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_gc_removes_orphan_blobs_and_keeps_live_ones(backend, moto_server, tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'gc.db'}")
    run_migrations(engine)
    sessions = make_session_factory(engine)
    store = _s3_store(moto_server, tmp_path) if backend == "s3" else BlobStore(tmp_path / "blobs", tmp_path / "tmp")
    live, orphan = _put(store, b"live dataset " * 50), _put(store, b"orphan: killed before its row " * 50)
    live_id = new_id("ds")
    with sessions() as session:
        session.add(Dataset(id=live_id, sha256=live, format="bytes", name="live", bytes=650, stored_bytes=1))
        session.commit()
    assert collect_garbage(store, sessions, grace_seconds=3600) == []  # young orphans may be uploads
    assert store.exists(orphan)
    assert collect_garbage(store, sessions, grace_seconds=0) == [orphan]
    assert store.exists(live) and not store.exists(orphan)
    (tmp_path / "run.json").write_text("{}")
    store.put_object("runs/job_gone/run-1.json", tmp_path / "run.json")  # its job was deleted
    store.put_object(f"models/{live_id}/job_a/job_a.pt", tmp_path / "run.json")
    store.put_object("models/ds_gone/job_b/job_b.pt", tmp_path / "run.json")  # killed mid-delete
    collect_garbage(store, sessions, grace_seconds=3600)
    assert store.object_groups("runs") == []
    assert store.object_groups("models") == [live_id]
    engine.dispose()


def test_service_keeps_blobs_in_s3_and_scores_from_there(moto_server, tmp_path):
    data = os.urandom(8 << 10) + bytes(range(256)) * 64
    bucket = f"svc-{uuid.uuid4().hex[:10]}"
    # A loaded CI machine may take more than the 5 s FAST_TIMINGS allow to import torch.
    env = {**moto_server.env(bucket), "EPIPLEX_STALE_AFTER_SECONDS": "60"}
    with ServiceProcess(tmp_path / "svc", env=env) as server, \
            server.client() as client:
        dataset = client.upload(data, name="in-s3")
        assert dataset.sha256 == hashlib.sha256(data).hexdigest()
        assert client.download(dataset.id) == data
        assert not list((tmp_path / "svc" / "blobs").glob("??/*.zst"))  # nothing on local disk
        store = S3BlobStore(f"s3://{bucket}/epiplex", tmp_path / "probe", moto_server.url)
        assert store.exists(dataset.sha256)
        job = client.wait(client.create_job(dataset.id, budgets=[1e8]).id, timeout=120)
        assert job.status == "succeeded", job.error
        assert job.result["dataset"]["sha256"] == dataset.sha256
        # The model kept for transfer is in the bucket too, where every node can fetch it.
        assert store.get_objects(f"models/{dataset.id}/{job.id}", tmp_path / "model") == [f"{job.id}.pt"]
        client.delete_dataset(dataset.id)
        assert not store.exists(dataset.sha256)
        assert store.object_groups("models") == []


def test_upload_with_storage_down_is_503_and_records_nothing(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1",
           "EPIPLEX_BLOB_URL": "s3://nowhere/epiplex", "EPIPLEX_S3_ENDPOINT_URL": dead}
    with ServiceProcess(tmp_path / "down", env=env) as server:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            response = http.post("/v1/datasets", content=b"some bytes" * 100, headers=OCTET)
            assert response.status_code == 503, response.text
            assert "object storage is unavailable" in response.json()["detail"]
            assert http.get("/v1/datasets").json()["total"] == 0
    assert not list((tmp_path / "down" / "tmp").glob("upload-*"))


def test_storage_errors_become_storage_unavailable(tmp_path):
    store = S3BlobStore("s3://nowhere/p", tmp_path, f"http://127.0.0.1:{free_port()}")
    with pytest.raises(StorageUnavailable, match="object storage unavailable"):
        store.exists("0" * 64)
