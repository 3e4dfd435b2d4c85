"""API keys: created and revoked by `epiplex keys`, kept only as the sha256 of their secret.

A key is 32 random bytes (URL-safe base64), so a plain sha256 is enough to store it: there is
nothing to guess, and hashing lets the server look it up by an index without keeping it.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.errors import Conflict, NotFound, ServiceError
from app.core.ids import new_id
from app.core.models import ApiKey, utcnow

SECRET_PREFIX = "epx_"
MAX_NAME = 100


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class NewKey:
    """A key just created: `secret` is shown once and never stored."""

    id: str
    name: str
    admin: bool
    secret: str


def create_key(session: Session, name: str, admin: bool = False) -> NewKey:
    """Store a new key under a unique name; Conflict when the name is taken."""
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise ServiceError(f"a key name is 1 to {MAX_NAME} characters")
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(id=new_id("key"), name=name, secret_sha256=hash_secret(secret), prefix=secret[:10],
                 admin=admin, created_at=utcnow())
    session.add(key)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"a key named {name!r} already exists; pick another name or revoke it first") from None
    return NewKey(key.id, key.name, key.admin, secret)


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)))


def revoke_key(session: Session, id_or_name: str) -> ApiKey:
    """Revoke a key by id or name; it stops working at the next request. Its data keeps its owner."""
    key = session.get(ApiKey, id_or_name) or session.scalar(select(ApiKey).where(ApiKey.name == id_or_name))
    if key is None:
        raise NotFound("key", id_or_name)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.commit()
    return key


def find_active_key(session: Session, secret: str) -> ApiKey | None:
    """The unrevoked key with this secret, or None."""
    return session.scalar(select(ApiKey).where(ApiKey.secret_sha256 == hash_secret(secret),
                                               ApiKey.revoked_at.is_(None)))


def any_key_created(session: Session) -> bool:
    """Keys are on once any key was created: revoking the last one must not open the service."""
    return session.scalar(select(ApiKey.id).limit(1)) is not None


def active_key_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.revoked_at.is_(None)))
