"""Garbage collection of orphan blobs: blobs no dataset row names, e.g. left by a kill between
storing the blob and committing its row, or by a delete that failed halfway.

A blob younger than the grace period is kept: it may belong to an upload whose row is being
committed right now (by this process or another API process sharing the storage).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, sessionmaker

from app.core.models import Dataset, Job
from app.storage.base import BlobStorage
from app.transfer.step import MODELS

log = logging.getLogger("epiplex.storage.gc")


def collect_garbage(blobs: BlobStorage, sessions: sessionmaker[Session], grace_seconds: float) -> list[str]:
    """Delete orphan blobs older than `grace_seconds`, stale temporary uploads, the saved runs
    of jobs that are gone or succeeded and the kept models of deleted datasets; returns the sha256
    of the blobs deleted."""
    blobs.clear_tmp(older_than_seconds=grace_seconds)
    _collect_saved_runs(blobs, sessions)
    _collect_kept_models(blobs, sessions)
    old = [sha for sha, age in blobs.list_blobs() if age >= grace_seconds]
    deleted: list[str] = []
    if not old:
        return deleted
    # The lock orders GC against uploads in this process: a blob committed under it is either
    # seen with its row here or not old enough to be a candidate.
    with blobs.lock, sessions() as session:
        used = set(session.scalars(select(Dataset.sha256).where(Dataset.sha256.in_(old))))
        for sha in old:
            if sha not in used:
                blobs.delete(sha)
                deleted.append(sha)
    if deleted:
        log.info("orphan blobs removed", extra={"count": len(deleted)})
    return deleted


def _collect_saved_runs(blobs: BlobStorage, sessions: sessionmaker[Session]) -> None:
    """Saved runs (`objects/runs/JOB_ID`, written by the Ray executor) outlive a canceled or failed
    job on purpose, since a resubmission resumes from them; not a deleted or succeeded one."""
    _collect_groups(blobs, sessions, "runs",
                    lambda ids: select(Job.id).where(Job.id.in_(ids), Job.status != "succeeded"))


def _collect_kept_models(blobs: BlobStorage, sessions: sessionmaker[Session]) -> None:
    """Kept models (`objects/models/DATASET_ID`) of datasets that are gone: a delete removes them
    after its commit, so a kill or a storage outage in between leaves them behind."""
    _collect_groups(blobs, sessions, MODELS, lambda ids: select(Dataset.id).where(Dataset.id.in_(ids)))


def _collect_groups(blobs: BlobStorage, sessions: sessionmaker[Session], prefix: str,
                    kept: Callable[[list[str]], Select]) -> None:
    """Delete each object group `prefix/NAME` whose NAME the query `kept(names)` does not return."""
    groups = blobs.object_groups(prefix)
    if not groups:
        return
    with sessions() as session:
        keep = set(session.scalars(kept(groups)))
    for name in groups:
        if name not in keep:
            blobs.delete_objects(f"{prefix}/{name}")


class GarbageCollector:
    """Runs `collect_garbage` now and then every `interval_seconds` in a daemon thread."""

    def __init__(self, blobs: BlobStorage, sessions: sessionmaker[Session], grace_seconds: float,
                 interval_seconds: float) -> None:
        self._args = (blobs, sessions, grace_seconds)
        self._interval = interval_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="blob-gc", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            try:
                collect_garbage(*self._args)
            except Exception:  # storage down: try again next time
                log.warning("blob garbage collection failed", exc_info=True)
            if self._stop.wait(self._interval):
                return
