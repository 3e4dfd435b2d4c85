"""At start: delete local blobs no dataset refers to, left by a crash between storing a blob and
committing its dataset row (or between deleting the row and the blob).

Runs once, before the server takes requests, so no upload of this server is in flight. It assumes
the blob directory is this server's alone (the local backend's case); a shared object store needs
a garbage collector with a grace period instead.
"""
from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.core.models import Dataset
from app.storage.local import BlobStore

log = logging.getLogger("epiplex.storage")


def sweep_orphan_blobs(blobs: BlobStore, factory: sessionmaker[Session]) -> int:
    """Remove blob files whose sha256 no dataset has; returns how many were removed."""
    with factory() as session:
        referenced = set(session.scalars(select(Dataset.sha256).distinct()))
    removed = 0
    for path in blobs.root.glob("??/*.zst"):
        if path.name.removesuffix(".zst") not in referenced:
            path.unlink(missing_ok=True)
            removed += 1
    if removed:
        log.warning("orphan blobs removed at start", extra={"blobs_removed": removed})
    return removed
