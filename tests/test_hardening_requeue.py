"""At start, running jobs of this host whose server died go back to the queue at once, without
counting the lost attempt; jobs of a live server, or of another host, are left alone."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

from sqlalchemy import select

from app.core.db import make_engine, make_session_factory, run_migrations
from app.core.models import Dataset, Job, utcnow
from app.core.settings import Settings
from app.jobs.executors.local import LocalExecutor
from app.jobs.recovery import requeue_orphans, worker_orphaned


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def orphan_pid() -> subprocess.Popen:
    """A live process whose parent has exited (re-parented to init), like a worker of a killed server."""
    launcher = subprocess.run(
        [sys.executable, "-c", "import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', "
         "'import time; time.sleep(30)']); print(p.pid)"], capture_output=True, text=True, check=True)
    return int(launcher.stdout.strip())


def test_requeue_orphans(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'epiplex.db'}")
    run_migrations(engine)
    factory = make_session_factory(engine)
    host = socket.gethostname()
    orphan = orphan_pid()
    rows = {  # job id -> (worker host, worker pid)
        "job_dead": (host, dead_pid()), "job_none": (host, None), "job_orphan": (host, orphan),
        "job_live": (host, os.getpid()), "job_elsewhere": ("another-host", dead_pid())}
    try:
        with factory() as session:
            session.add(Dataset(id="ds_1", sha256="0" * 64, format="bytes", name="d", bytes=1, stored_bytes=1))
            for number, (job_id, (worker_host, pid)) in enumerate(rows.items()):
                session.add(Job(id=job_id, dataset_id="ds_1", config_key=str(number), estimator="prequential",
                                seeds=1, status="running", attempts=1, heartbeat_at=utcnow(),
                                worker_host=worker_host, worker_pid=pid))
            session.commit()

        assert sorted(requeue_orphans(factory)) == ["job_dead", "job_none", "job_orphan"]
        with factory() as session:
            state = {job.id: (job.status, job.attempts) for job in session.scalars(select(Job))}
        assert state == {"job_dead": ("queued", 0), "job_none": ("queued", 0), "job_orphan": ("queued", 0),
                         "job_live": ("running", 1), "job_elsewhere": ("running", 1)}
        assert requeue_orphans(factory) == []  # nothing left to take back
    finally:
        os.kill(orphan, 9)
        engine.dispose()


def test_worker_orphaned_reads_the_parent():
    assert worker_orphaned(None) and worker_orphaned(dead_pid())
    assert not worker_orphaned(os.getpid())  # this test's parent is alive


def test_the_local_executor_leaves_no_attempt_files(tmp_path):
    """A job that ends just before its server is killed or stopped is never collected: its
    attempts' copies would stay in tmp unless starting and stopping clear them (the soak test
    caught it)."""
    settings = Settings(data_dir=tmp_path, workers=1, poll_seconds=0.1)
    settings.ensure_dirs()
    factory = make_session_factory(make_engine(settings.resolved_database_url))
    run_migrations(factory.kw["bind"])
    (settings.tmp_dir / "job-job_a-3.data").write_bytes(b"copy")
    (settings.tmp_dir / "job-job_a-3.model").mkdir()
    (settings.tmp_dir / "job-job_a-3.model" / "model.pt").write_bytes(b"weights")
    (settings.tmp_dir / "upload-in-flight").write_bytes(b"not the executor's")
    executor = LocalExecutor(settings, factory)
    executor.start()
    try:
        assert sorted(path.name for path in settings.tmp_dir.iterdir()) == ["upload-in-flight"]
        (settings.tmp_dir / "job-job_b-1.data").write_bytes(b"a copy whose worker exited uncollected")
    finally:
        executor.stop()
    assert sorted(path.name for path in settings.tmp_dir.iterdir()) == ["upload-in-flight"]
