"""The reference panel in the service: the datasets transfer is measured to by default.

The built-in members (`estimators.panel`: generated sources and Python's own files) are stored
on first use as ordinary datasets, content-addressed like uploads, so it happens once per
database; a marker row remembers that, so a member an operator removed stays removed.
Operators add and remove members through /v1/panel.
"""
from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.ids import new_id
from app.core.models import Dataset, ServiceState, utcnow
from app.services import Services

log = logging.getLogger("epiplex.panel")

BUILTIN_MARKER = "builtin_panel"
BUILTIN = "builtin"
OPERATOR = "operator"


def store_bytes(services: Services, data: bytes, name: str, fmt: str = "bytes") -> str:
    """The id of the dataset holding `data` in `fmt`: an existing one with the same content, or a new one."""
    writer = services.blobs.writer(max(1, len(data)), keep_raw=False)
    try:
        writer.write(data)
        writer.finish()
        with services.blobs.lock, services.sessions() as session:
            # Built-in members belong to no key and are public, whoever uploaded the same bytes.
            query = select(Dataset.id).where(Dataset.sha256 == writer.sha256, Dataset.format == fmt,
                                             Dataset.owner_id == "")
            if existing := session.scalar(query):
                return existing
            blob = writer.commit()
            session.add(Dataset(id=new_id("ds"), sha256=blob.sha256, format=fmt, name=name,
                                bytes=blob.bytes, stored_bytes=blob.stored_bytes, owner_id="", visibility="public"))
            try:
                session.commit()
            except IntegrityError:  # the same bytes raced in through an upload
                session.rollback()
            return session.scalar(query)
    finally:
        writer.close()


def ensure_builtin(services: Services) -> None:
    """Store the built-in panel members as datasets, once per database."""
    with services.sessions() as session:
        if session.get(ServiceState, BUILTIN_MARKER) is not None:
            return
    with services.panel_lock:
        from estimators import panel

        with services.sessions() as session:
            if session.get(ServiceState, BUILTIN_MARKER) is not None:
                return
        size = services.settings.panel_bytes
        members = {}
        for member in panel.PANEL:
            dataset_id = store_bytes(services, member.make(size, 0), f"panel/{member.name}")
            members[member.name] = dataset_id
            with services.sessions() as session:
                dataset = session.get(Dataset, dataset_id)
                if dataset.panel_source is None:
                    dataset.panel_source, dataset.panel_description = BUILTIN, member.description
                    session.commit()
        with services.sessions() as session:
            session.add(ServiceState(key=BUILTIN_MARKER, value={"bytes": size, "members": members},
                                     updated_at=utcnow()))
            try:
                session.commit()
            except IntegrityError:  # another API process stored the same panel first
                session.rollback()
        log.info("built-in reference panel stored", extra={"members": len(members), "bytes": size})


def members(session: Session) -> list[Dataset]:
    """The panel's datasets, by name."""
    return list(session.scalars(select(Dataset).where(Dataset.panel_source.is_not(None))
                                .order_by(Dataset.name, Dataset.id)))
