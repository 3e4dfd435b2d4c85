"""At start: hand back to the queue the jobs a crashed server of this host left `running`.

Without this a job whose server was killed stays `running` until the reaper's stale timeout.
A job is taken back only when its worker is provably not a live child of a live server on this
host (no worker recorded, the process is gone, or it was orphaned), so a second server sharing
the database on the same host keeps its own jobs; jobs of other hosts are left to the reaper.
The fencing token (`attempts`) keeps a worker still exiting from writing over the re-queued row.
"""
from __future__ import annotations

import logging
import os
import socket

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.core.db import session_scope
from app.core.models import Job
from app.jobs import store
from app.jobs.store import Claim

log = logging.getLogger("epiplex.executor")


def _parent_pid(pid: int) -> int | None:
    """The parent of a live process, or None when it is gone (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            # Field 4 is the parent pid; split after the command name, which may hold spaces.
            return int(handle.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def worker_orphaned(pid: int | None) -> bool:
    """True unless `pid` runs with its launching server still alive above it."""
    if pid is None:
        return True
    parent = _parent_pid(pid)
    return parent is None or parent <= 1 or not _alive(parent)


def requeue_orphans(factory: sessionmaker[Session]) -> list[str]:
    """Re-queue this host's running jobs whose server died; the lost attempt does not count."""
    host = socket.gethostname()
    with session_scope(factory) as session:
        rows = session.execute(select(Job.id, Job.attempts, Job.lease, Job.worker_pid).where(
            (Job.status == "running") & (Job.worker_host == host))).all()
    requeued = []
    for job_id, attempts, lease, pid in rows:
        if worker_orphaned(pid) and store.release(factory, Claim(job_id, attempts, lease)):
            log.warning("job of a stopped server re-queued at start", extra={"job_id": job_id, "worker_pid": pid})
            requeued.append(job_id)
    return requeued
