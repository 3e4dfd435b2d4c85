"""Parts of the service on their own: blob store, job state transitions, settings, torch-freedom."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from datetime import timedelta

import pytest
from sqlalchemy import update

from app.auth.access import Caller
from app.core.db import head_revision, make_engine, run_migrations, schema_revision
from app.core.models import Dataset, Job, utcnow
from app.core.settings import Settings
from app.jobs import store
from app.jobs.service import cancel_job, submit_job
from app.jobs.settings import JobSettings
from app.services import Services
from app.storage import BlobStore, BlobTooLarge


# --- blob store -----------------------------------------------------------------------------

@pytest.fixture()
def blobs(tmp_path):
    return BlobStore(tmp_path / "blobs", tmp_path / "tmp", zstd_level=3)


def _store(blobs: BlobStore, data: bytes, max_bytes: int = 1 << 30):
    writer = blobs.writer(max_bytes)
    try:
        for start in range(0, len(data), 4096):
            writer.write(data[start:start + 4096])
        writer.finish()
        return writer.commit()
    finally:
        writer.close()


def test_blob_is_named_by_sha256_compressed_and_restored_exactly(blobs, tmp_path):
    data = b"epiplexity " * 10_000
    blob = _store(blobs, data)
    assert blob.sha256 == hashlib.sha256(data).hexdigest() and blob.bytes == len(data)
    assert blob.stored_bytes < len(data) // 50
    assert b"".join(blobs.iter_chunks(blob.sha256)) == data
    assert blobs.restore_to(blob.sha256, tmp_path / "copy").read_bytes() == data


def test_same_content_is_stored_once_and_temp_files_are_cleaned(blobs):
    data = os.urandom(20_000)
    first, second = _store(blobs, data), _store(blobs, data)
    assert first == second
    assert len(list(blobs.root.rglob("*.zst"))) == 1
    assert not list(blobs.tmp_dir.iterdir())


def test_oversize_stream_raises_and_leaves_nothing_behind(blobs):
    with pytest.raises(BlobTooLarge):
        _store(blobs, os.urandom(10_000), max_bytes=9_999)
    assert not list(blobs.root.rglob("*.zst")) and not list(blobs.tmp_dir.iterdir())


def test_corrupt_blob_is_detected_on_restore(blobs, tmp_path):
    blob = _store(blobs, b"a" * 1000)
    other = _store(blobs, b"b" * 1000)
    os.replace(blobs.path_for(other.sha256), blobs.path_for(blob.sha256))
    with pytest.raises(OSError, match="corrupt"):
        blobs.restore_to(blob.sha256, tmp_path / "out")


# --- job state transitions ------------------------------------------------------------------

@pytest.fixture()
def sessions(db):
    """A fresh migrated database, once on SQLite and once on PostgreSQL (conftest `db`)."""
    return db


def _queue(sessions, *job_ids: str) -> None:
    with sessions() as session:
        session.add(Dataset(id="ds", sha256="0" * 64, format="bytes", name="d", bytes=1, stored_bytes=1))
        for number, job_id in enumerate(job_ids):
            session.add(Job(id=job_id, dataset_id="ds", config_key=job_id, preset="quick", estimator="prequential",
                            seeds=1, status="queued", progress=0.0, attempts=0,
                            created_at=utcnow() + timedelta(seconds=number)))
        session.commit()


def _job(sessions, job_id: str) -> Job:
    with sessions() as session:
        return session.get(Job, job_id)


def test_claims_take_oldest_queued_job_first_and_count_attempts(sessions):
    _queue(sessions, "old", "new")
    assert store.claim_next(sessions) == store.Claim("old", attempt=1, lease=1)
    assert store.claim_next(sessions) == store.Claim("new", attempt=1, lease=1)
    assert store.claim_next(sessions) is None
    assert _job(sessions, "old").status == "running"


def test_a_superseded_attempt_can_no_longer_write(sessions):
    _queue(sessions, "j")
    first = store.claim_next(sessions)
    assert store.fail_attempt(sessions, first, "crash", max_attempts=3) == "queued"
    second = store.claim_next(sessions)
    assert second.attempt == 2
    assert not store.heartbeat(sessions, first, 0.9, "late")
    assert not store.complete(sessions, first, {"epiplexity_bits": 1.0}, 1.0)
    assert store.heartbeat(sessions, second, 0.25, "working")
    job = _job(sessions, "j")
    assert (job.status, job.progress, job.message) == ("running", 0.25, "working")


def test_a_resubmitted_job_refuses_every_write_of_the_worker_it_replaced(sessions, tmp_path):
    """Two workers, one job: A is still dying when the job is canceled, resubmitted and claimed
    by B. Both hold attempt 1 of the job; only B's lease is current, so A can write nothing."""
    services = Services(Settings(data_dir=tmp_path), engine=None, sessions=sessions, blobs=None, executor=None)
    _queue(sessions)  # the dataset only
    with sessions() as session:
        job_id = submit_job(session, services, Caller(), "ds", JobSettings(preset="quick")).job.id
    worker_a = store.claim_next(sessions)
    assert store.heartbeat(sessions, worker_a, 0.5, "A working")
    with sessions() as session:
        cancel_job(session, Caller(), job_id)
        assert submit_job(session, services, Caller(), "ds", JobSettings(preset="quick")).queued
    worker_b = store.claim_next(sessions)
    assert (worker_a.job_id, worker_a.attempt) == (worker_b.job_id, worker_b.attempt) == (job_id, 1)
    assert worker_b.lease > worker_a.lease

    assert not store.heartbeat(sessions, worker_a)
    assert not store.heartbeat(sessions, worker_a, 0.99, "A's late progress")
    assert not store.complete(sessions, worker_a, {"epiplexity_bits": 666.0}, 1.0)
    assert store.fail_attempt(sessions, worker_a, "A crashed", max_attempts=3) is None
    assert not store.release(sessions, worker_a)
    assert not store.still_owned(sessions, worker_a)
    job = _job(sessions, job_id)
    assert (job.status, job.progress, job.message, job.error) == ("running", 0.0, "attempt 1 starting", None)

    assert store.heartbeat(sessions, worker_b, 0.25, "B working")
    assert store.complete(sessions, worker_b, {"epiplexity_bits": 42.0}, 2.0)
    job = _job(sessions, job_id)
    assert (job.status, job.result, job.epiplexity_bits, job.attempts) == ("succeeded", {"epiplexity_bits": 42.0},
                                                                           42.0, 1)


def test_a_job_that_keeps_failing_ends_failed_with_the_reason(sessions):
    _queue(sessions, "j")
    statuses = [store.fail_attempt(sessions, store.claim_next(sessions), "boom", max_attempts=3) for _ in range(3)]
    assert statuses == ["queued", "queued", "failed"]
    job = _job(sessions, "j")
    assert job.status == "failed" and job.error == "boom (gave up after 3 attempts)" and job.finished_at
    assert store.claim_next(sessions) is None


def test_a_data_error_fails_at_once(sessions):
    _queue(sessions, "j")
    assert store.fail_attempt(sessions, store.claim_next(sessions), "bad data", 3, retryable=False) == "failed"
    assert _job(sessions, "j").error == "bad data"


def test_reaper_requeues_running_jobs_whose_heartbeat_went_stale(sessions):
    _queue(sessions, "silent", "alive")
    silent, alive = store.claim_next(sessions), store.claim_next(sessions)
    assert (silent.job_id, alive.job_id) == ("silent", "alive")
    with sessions() as session:
        session.execute(update(Job).where(Job.id == "silent").values(heartbeat_at=utcnow() - timedelta(seconds=60)))
        session.commit()
    assert store.reap_stale(sessions, stale_after_seconds=30, max_attempts=3) == ["silent"]
    assert _job(sessions, "silent").status == "queued" and "heartbeat" in _job(sessions, "silent").error
    assert store.heartbeat(sessions, alive)


def test_release_hands_a_job_back_without_spending_an_attempt(sessions):
    _queue(sessions, "j")
    claim = store.claim_next(sessions)
    assert store.release(sessions, claim)
    job = _job(sessions, "j")
    assert (job.status, job.attempts, job.lease) == ("queued", 0, 1)
    assert store.claim_next(sessions) == store.Claim("j", attempt=1, lease=2)  # a lease is never handed out twice


def test_complete_stores_result_unchanged_and_one_row_per_budget(sessions):
    _queue(sessions, "j")
    claim = store.claim_next(sessions)
    point = {"budget_flops": 1e9, "epiplexity_bits": 1.0, "entropy_bits": 2.0, "epiplexity_bits_per_byte": 0.1,
             "entropy_bits_per_byte": 0.2}
    result = {"epiplexity_bits": 1.0, "entropy_bits": 2.0, "epiplexity_bits_per_byte": 0.1,
              "entropy_bits_per_byte": 0.2, "curve": [point, point], "baselines": {"zstd_bits_per_byte": 8.1}}
    assert store.complete(sessions, claim, result, 3.0)
    job = _job(sessions, "j")
    assert (job.status, job.result, job.zstd_bits_per_byte, job.seconds) == ("succeeded", result, 8.1, 3.0)
    with sessions() as session:
        assert len(session.get(Job, "j").curve_points) == 1


# --- settings, migrations, process hygiene --------------------------------------------------

def test_settings_read_the_environment_with_the_epiplex_prefix(monkeypatch, tmp_path):
    monkeypatch.setenv("EPIPLEX_WORKERS", "4")
    monkeypatch.setenv("EPIPLEX_DATA_DIR", str(tmp_path))
    settings = Settings()
    assert settings.workers == 4 and settings.data_dir == tmp_path
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'epiplex.db'}"
    assert settings.threads_per_job() == max(1, (os.cpu_count() or 1) // 4)
    monkeypatch.setenv("EPIPLEX_CORES_PER_WORKER", "1")
    assert Settings().threads_per_job() == 1
    monkeypatch.setenv("EPIPLEX_CORES_PER_WORKER", str(10 * (os.cpu_count() or 1)))
    assert Settings().threads_per_job() == (os.cpu_count() or 1)


def test_migrations_reach_head_and_are_safe_to_rerun(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    run_migrations(engine)
    run_migrations(engine)
    assert schema_revision(engine) == head_revision() is not None
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


def _migrate_to(engine, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    from app.core.db import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_migration_0003_restates_stored_transfer_as_the_mixture_of_both_runs(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    _migrate_to(engine, "0002")
    with engine.begin() as connection:
        for name in ("src", "helped", "hurt"):
            connection.exec_driver_sql(
                "INSERT INTO datasets (id, sha256, format, name, bytes, stored_bytes, created_at) "
                f"VALUES ('ds_{name}', '{name}', 'bytes', '{name}', 100, 50, '2026-11-29 00:00:00')")
        # rows as the old code stored them: transfer = scratch - warm start, signed
        for target, scratch, warm in (("helped", 50_000.0, 40_000.0), ("hurt", 30_000.0, 130_000.0)):
            connection.exec_driver_sql(
                "INSERT INTO transfer_results (source_dataset_id, target_dataset_id, score_key, preset, seed, "
                "transfer_bits, transfer_bits_per_byte, scratch_code_bits, transfer_code_bits, "
                "target_bytes_coded, target_tokens_coded, budget_flops, model, measured_at) VALUES "
                f"('ds_src', 'ds_{target}', 'k', 'quick', 0, {scratch - warm}, {(scratch - warm) / 10_000}, "
                f"{scratch}, {warm}, 10000, 10000, 1e9, '{{}}', '2026-11-29 00:00:00')")
        connection.exec_driver_sql(
            "INSERT INTO jobs (id, dataset_id, config_key, preset, estimator, seeds, status, progress, attempts, "
            "created_at) VALUES ('job_old', 'ds_src', 'k', 'quick', 'prequential', 1, 'succeeded', 1.0, 1, "
            "'2026-11-29 00:00:00')")
    run_migrations(engine)  # later migrations re-create `datasets` on SQLite: nothing may cascade away
    with engine.connect() as connection:
        rows = {r[0]: tuple(r[1:]) for r in connection.exec_driver_sql(
            "SELECT target_dataset_id, transfer_bits, transfer_bits_per_byte, scratch_code_bits, "
            "transfer_code_bits FROM transfer_results")}
        assert "bytes_coded" in {c[1] for c in connection.exec_driver_sql("PRAGMA table_info(jobs)")}
        assert connection.exec_driver_sql("SELECT id FROM jobs").scalars().all() == ["job_old"]
    assert rows["ds_helped"] == pytest.approx((9_999.0, 0.9999, 50_000.0, 40_000.0))
    assert rows["ds_hurt"] == pytest.approx((-1.0, -0.0001, 30_000.0, 130_000.0))
    engine.dispose()


def test_the_api_process_never_imports_torch(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        from fastapi.testclient import TestClient
        from app.api.app import create_app
        from app.core.settings import Settings
        with TestClient(create_app(Settings(data_dir={str(tmp_path)!r}, workers=1)), base_url="http://127.0.0.1") as http:
            ds = http.post("/v1/datasets", params={{"format": "text"}}, content=b"hello",
                            headers={{"content-type": "application/octet-stream"}}).json()
            assert http.post("/v1/jobs", json={{"dataset_id": ds["id"]}}).status_code == 202
            assert http.get("/v1/leaderboard").status_code == 200
            assert http.get("/metrics").status_code == 200
        assert "torch" not in sys.modules, "torch was imported by the API process"
    """)
    env = {**os.environ, "EPIPLEX_POLL_SECONDS": "0.05"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-3000:]


def test_cli_serve_help_lists_every_option(capsys):
    from app.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert all(flag in out for flag in ("--host", "--port", "--data-dir", "--workers"))
