"""PostgreSQL in particular: the migrations on a real server, claiming with SKIP LOCKED, an
unreachable database at start, and a database restart in the middle of a job.

The store, queue and API tests run on both backends through the conftest fixtures; these are
the behaviours only PostgreSQL (or only a database URL) has.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text

from app.core.db import head_revision, make_engine, make_session_factory, run_migrations, schema_revision
from app.core.models import Base, Dataset, Job, utcnow
from app.jobs import store
from app.testing import ServiceProcess, free_port
from app.testing_postgres import PostgresMissing, PostgresServer

postgres = pytest.mark.postgres
BUDGETS = [1e10, 1e11]  # a job of a few seconds: long enough to restart the database under it


@pytest.fixture()
def pg_engine(postgres_server):
    url = postgres_server.create_database()
    engine = make_engine(url)
    yield engine
    engine.dispose()
    postgres_server.drop_database(url)


def queue_jobs(factory, count: int) -> list[str]:
    ids = [f"job{number:05d}" for number in range(count)]
    with factory() as session:
        session.add(Dataset(id="ds", sha256="0" * 64, format="bytes", name="d", bytes=1, stored_bytes=1))
        session.add_all(Job(id=job_id, dataset_id="ds", config_key=job_id, preset="quick", estimator="prequential",
                            seeds=1, status="queued", progress=0.0, attempts=0,
                            created_at=utcnow() + timedelta(milliseconds=number))
                        for number, job_id in enumerate(ids))
        session.commit()
    return ids


@postgres
def test_migrations_on_postgres_reach_head_match_the_models_and_run_down_and_up(pg_engine):
    run_migrations(pg_engine)
    run_migrations(pg_engine)
    assert schema_revision(pg_engine) == head_revision() is not None
    with pg_engine.connect() as connection:
        # No drift between the migrations and the models: types, nullability, indexes, keys.
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
        columns = {c["name"]: c for c in inspect(connection).get_columns("datasets")}
        assert str(columns["bytes"]["type"]) == "BIGINT"  # a 3 GB upload fits
        jobs = {c["name"]: c for c in inspect(connection).get_columns("jobs")}
        assert str(jobs["budgets"]["type"]) == "JSON" and jobs["lease"]["default"] == "0"
    with pg_engine.begin() as connection:  # rows written by older code, which knows no lease
        connection.execute(text("INSERT INTO datasets (id, sha256, format, name, bytes, stored_bytes, created_at) "
                                "VALUES ('big', :sha, 'bytes', 'big', 3000000000, 5, now())"), {"sha": "1" * 64})
        connection.execute(text("INSERT INTO jobs (id, dataset_id, config_key, estimator, seeds, status, progress, "
                                "attempts, created_at, budgets) VALUES ('old', 'big', 'k', 'prequential', 1, "
                                "'queued', 0, 2, now(), '[1e9, 1e10]')"))
    factory = make_session_factory(pg_engine)
    assert store.claim_next(factory) == store.Claim("old", attempt=3, lease=1)
    with factory() as session:
        assert session.get(Job, "old").budgets == [1e9, 1e10]

    from alembic import command
    from alembic.config import Config

    from app.core.db import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with pg_engine.begin() as connection:
        connection.execute(text("DELETE FROM datasets"))  # a 3 GB size cannot go back to 32 bits
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    with pg_engine.connect() as connection:
        assert set(inspect(connection).get_table_names()) == {"alembic_version"}
    run_migrations(pg_engine)
    assert schema_revision(pg_engine) == head_revision()


@postgres
def test_services_starting_together_migrate_one_database_once(postgres_server):
    url = postgres_server.create_database()
    engines = [make_engine(url) for _ in range(3)]
    errors: list[BaseException] = []

    def start(engine) -> None:
        try:
            run_migrations(engine)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=start, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and schema_revision(engines[0]) == head_revision()
    for engine in engines:
        engine.dispose()
    postgres_server.drop_database(url)


@postgres
def test_a_claim_skips_a_row_another_claimer_holds_instead_of_waiting(pg_engine):
    run_migrations(pg_engine)
    factory = make_session_factory(pg_engine)
    queue_jobs(factory, 2)
    claimed: list[store.Claim | None] = []
    with factory() as holder, holder.begin():
        held = holder.scalar(select(Job.id).order_by(Job.created_at).limit(1).with_for_update())
        thread = threading.Thread(target=lambda: claimed.append(store.claim_next(factory)), daemon=True)
        thread.start()
        thread.join(20)
        # Still inside the holder's transaction: a claim that waited for its lock would not be back.
        assert claimed == [store.Claim("job00001", attempt=1, lease=1)], "claim blocked on a locked row"
    assert held == "job00000"
    assert store.claim_next(factory) == store.Claim("job00000", attempt=1, lease=1)
    assert store.claim_next(factory) is None


@postgres
def test_concurrent_claimers_never_get_the_same_job(pg_engine):
    run_migrations(pg_engine)
    factory = make_session_factory(pg_engine)
    ids = queue_jobs(factory, 300)
    got: list[list[str]] = [[] for _ in range(4)]

    def claimer(mine: list[str]) -> None:
        while (claim := store.claim_next(factory)) is not None:
            mine.append(claim.job_id)

    threads = [threading.Thread(target=claimer, args=(mine,)) for mine in got]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    every = [job_id for mine in got for job_id in mine]
    assert sorted(every) == ids  # each job exactly once
    with factory() as session:
        assert set(session.scalars(select(Job.status))) == {"running"}


def test_missing_postgres_binaries_fail_with_what_to_install(tmp_path):
    with pytest.raises(PostgresMissing, match=r"not found in .*apt-get install -y postgresql-15"):
        PostgresServer(bin_dir=tmp_path).start()


@pytest.mark.parametrize("url, needle", [
    ("postgresql+psycopg://nobody@127.0.0.1:{port}/nothing", "cannot reach the database at "
                                                              "postgresql+psycopg://nobody@127.0.0.1:{port}/nothing: "),
    ("postgresql://nobody:secret@127.0.0.1:{port}/nothing", "cannot reach the database at "
                                                            "postgresql+psycopg://nobody:***@127.0.0.1:{port}/nothing: "),
    ("nonsense://x", "invalid database URL nonsense://x: "),
])
def test_serve_with_an_unreachable_database_exits_with_one_line_and_no_traceback(tmp_path, url, needle):
    port = free_port()  # nothing listens there
    env = {**os.environ, "EPIPLEX_DATABASE_URL": url.format(port=port)}
    done = subprocess.run([sys.executable, "-m", "app.cli", "serve", "--data-dir", str(tmp_path), "--port", "0"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"epiplex serve: {needle.format(port=port)}"), done.stderr
    assert "Traceback" not in done.stderr and "secret" not in done.stderr


@postgres
@pytest.mark.slow
def test_a_job_completes_in_its_first_attempt_when_postgres_restarts_mid_job(postgres_server, tmp_path):
    import random

    url = postgres_server.create_database()
    data = random.Random(7).randbytes(32 * 1024)
    # A generous stale limit: this is about riding out the outage, not about the reaper.
    env = {"EPIPLEX_DATABASE_URL": url, "EPIPLEX_STALE_AFTER_SECONDS": "30"}
    with ServiceProcess(tmp_path, workers=1, env=env) as server, server.client() as client:
        dataset = client.upload(data, name="restart")
        job = client.create_job(dataset.id, budgets=BUDGETS)
        deadline = time.monotonic() + 120
        while (row := client.get_job(job.id)).progress <= 0 and row.status in ("queued", "running"):
            assert time.monotonic() < deadline, "job never started"
            time.sleep(0.05)
        assert row.status == "running" and row.progress < 1, row
        # Down for longer than a heartbeat: the worker's writes must fail, and be retried.
        postgres_server.restart(down_seconds=2.0)
        finished = client.wait(job.id, timeout=300)
        log = server.log_path.read_text()
    assert finished.status == "succeeded", (finished, log[-5000:])
    assert '"message": "database unreachable; retrying"' in log, log[-5000:]
    assert finished.result["dataset"]["bytes"] == len(data)
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        row = session.get(Job, job.id)
        # The restart cost no attempt: the worker waited the database out instead of failing.
        assert (row.attempts, row.lease, row.error) == (1, 1, None)
    engine.dispose()
    postgres_server.drop_database(url)
