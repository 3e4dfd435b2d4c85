"""The long-lived parts of a running service, built once at start and injected into routes."""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.core.db import make_engine, make_session_factory, run_migrations
from app.core.settings import Settings
from app.jobs.executors import make_executor
from app.jobs.executors.base import Executor
from app.jobs.recovery import requeue_orphans
from app.storage import BlobStorage, BlobStore, open_storage
from app.storage.gc import GarbageCollector, collect_garbage

log = logging.getLogger("epiplex.service")


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    blobs: BlobStorage
    executor: Executor | None
    # Held while the built-in reference panel is stored, so concurrent first uses store it once.
    panel_lock: threading.Lock = field(default_factory=threading.Lock)
    blob_gc: GarbageCollector | None = None
    primary: bool = True  # False: an extra API process; the first one runs the executor

    @classmethod
    def start(cls, settings: Settings, run_executor: bool = True, primary: bool = True) -> Services:
        """Migrate the database, open the blob store and start the executor (if any workers).

        `primary=False` (an extra API process): the first process has migrated, keeps the data
        directory clean and runs the executor; this one only opens the database and the blob store."""
        settings.ensure_dirs()
        engine = make_engine(settings.resolved_database_url)
        sessions = make_session_factory(engine)
        blobs = open_storage(settings.blob_url, settings.blob_dir, settings.tmp_dir,
                             settings.s3_endpoint_url, settings.zstd_level)
        if not primary:
            return cls(settings, engine, sessions, blobs, executor=None, primary=False)
        run_migrations(engine)
        if isinstance(blobs, BlobStore):
            # The local directory is this server's alone and nothing is in flight before it serves,
            # so what a crash left (a blob stored but never recorded) goes now, whatever its age.
            # A shared bucket may hold other processes' uploads: there only the grace period applies.
            blobs.clear_tmp()
            collect_garbage(blobs, sessions, grace_seconds=0)
        blob_gc = GarbageCollector(blobs, sessions, settings.blob_gc_grace_seconds,
                                   settings.blob_gc_interval_seconds)
        blob_gc.start()
        executor = None
        if run_executor and settings.workers > 0:
            requeue_orphans(sessions)  # a dead server's jobs run again now, not after the reaper's timeout
            executor = make_executor(settings, sessions)
            executor.start()
        log.info("service started", extra={"data_dir": str(settings.data_dir.resolve()),
                                           "executor": settings.executor, "workers": settings.workers})
        return cls(settings, engine, sessions, blobs, executor, blob_gc=blob_gc)

    def stop(self) -> None:
        if self.executor:
            self.executor.stop()
        if self.blob_gc:
            self.blob_gc.stop()
        self.engine.dispose()
        log.info("service stopped")
