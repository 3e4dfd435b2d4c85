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
from app.storage import BlobStore
from app.storage.sweep import sweep_orphan_blobs

log = logging.getLogger("epiplex.service")


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    blobs: BlobStore
    executor: Executor | None
    # Held while the built-in reference panel is stored, so concurrent first uses store it once.
    panel_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def start(cls, settings: Settings, run_executor: bool = True) -> Services:
        """Migrate the database, open the blob store and start the executor (if any workers)."""
        settings.ensure_dirs()
        engine = make_engine(settings.resolved_database_url)
        run_migrations(engine)
        sessions = make_session_factory(engine)
        blobs = BlobStore(settings.blob_dir, settings.tmp_dir, settings.zstd_level)
        blobs.clear_tmp()
        sweep_orphan_blobs(blobs, sessions)  # a crash between blob and row leaves an unreferenced blob
        executor = None
        if run_executor and settings.workers > 0:
            requeue_orphans(sessions)  # a dead server's jobs run again now, not after the reaper's timeout
            executor = make_executor(settings, sessions)
            executor.start()
        log.info("service started", extra={"data_dir": str(settings.data_dir.resolve()),
                                           "executor": settings.executor, "workers": settings.workers})
        return cls(settings, engine, sessions, blobs, executor)

    def stop(self) -> None:
        if self.executor:
            self.executor.stop()
        self.engine.dispose()
        log.info("service stopped")
