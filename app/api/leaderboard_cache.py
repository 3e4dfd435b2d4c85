"""A cache of leaderboard pages, keyed by the request and a cheap fingerprint of the data.

Ranking joins every succeeded job with its dataset and the transfer rows (~10 ms for 1,000
datasets); the fingerprint is one statement of indexed aggregates and a token (~0.2 ms). Any
change that can alter a page changes the fingerprint: a job succeeding (count, newest finish), a
listed dataset deleted (its jobs go too), transfer measured (count, newest measurement), the panel edited
(its member ids), a dataset published or hidden (the token `note_visibility_change` replaces).
An upload alone lists nothing new, so it leaves the cached pages valid. Workers and other API
processes write too, so nothing in memory could be told of a change; the fingerprint is read
from the database on every request instead. Pages are kept as the JSON they are sent as.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.core.ids import new_id
from app.core.models import Dataset, Job, ServiceState, TransferRow, utcnow

T = TypeVar("T")
MAX_ENTRIES = 256
VISIBILITY_TOKEN = "visibility_changed"  # a service_state row (migration 0006)

_succeeded = Job.status == "succeeded"
_FINGERPRINT = select(*(part.scalar_subquery() for part in (
    select(func.count()).select_from(Job).where(_succeeded),  # both from ix_jobs_status_finished
    select(func.max(Job.finished_at)).where(_succeeded),
    select(func.count()).select_from(TransferRow),  # rows are added, or re-measured in place:
    select(func.max(TransferRow.measured_at)),      # ix_transfer_measured
    select(ServiceState.value).where(ServiceState.key == VISIBILITY_TOKEN))))
_PANEL = select(Dataset.id).where(Dataset.panel_source.is_not(None)).order_by(Dataset.id)


def data_fingerprint(session: Session) -> tuple:
    # Core statements on the session's connection: the same transaction, without the ORM's overhead.
    connection = session.connection()
    aggregates = connection.execute(_FINGERPRINT).one()
    panel = tuple(connection.execute(_PANEL).scalars())
    return (*aggregates[:4], str(aggregates[4]), panel)


def note_visibility_change(session: Session) -> None:
    """Call before committing a change of a dataset's visibility: cached pages must not show it."""
    token = {"token": new_id("vis")}
    changed = session.execute(update(ServiceState).where(ServiceState.key == VISIBILITY_TOKEN)
                              .values(value=token, updated_at=utcnow()))
    if changed.rowcount == 0:  # the row made by the migration is gone
        session.add(ServiceState(key=VISIBILITY_TOKEN, value=token, updated_at=utcnow()))


class PageCache:
    """Least-recently-used pages; thread-safe (sync routes run in a thread pool)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries

    def get_or_compute(self, key: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]  # type: ignore[return-value]
        value = compute()
        with self._lock:
            self._entries[key] = value
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return value
