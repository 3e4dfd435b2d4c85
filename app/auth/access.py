"""Who is asking, and what they may see and change: owners, admins and public or private data.

Every route and page goes through these functions, so the rules are the same everywhere:
- without keys (the loopback quick start) everyone sees and changes everything, as before;
- with keys, a dataset is seen by its owner, admins, and everyone when public or in the panel;
  a job is seen by whoever sees its dataset; anything unseen answers 404, never 403;
- only owners and admins change or delete what they see; only admins edit the panel (403).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, or_, true
from sqlalchemy.orm import Session

from app.core.errors import NotFound, ServiceError
from app.core.models import Dataset, Job


class Forbidden(ServiceError):
    status_code = 403


@dataclass(frozen=True)
class Caller:
    """The key behind a request (`key_id` None: no key) and whether keys are required at all."""

    key_id: str | None = None
    key_name: str | None = None
    admin: bool = False
    auth_enabled: bool = False

    @property
    def owner_id(self) -> str:
        """What new datasets and jobs record as their owner ("" without a key)."""
        return self.key_id or ""

    @property
    def sees_everything(self) -> bool:
        return self.admin or not self.auth_enabled

    @property
    def default_visibility(self) -> str:
        """Private when uploaded with a key; public when keys are off (everything is, then)."""
        return "private" if self.key_id else "public"

    def describe(self) -> str:
        return f"key {self.key_name!r}" if self.key_name else "a request without a key"


# No keys configured: the loopback quick start, where everyone may do everything.
OPEN = Caller()


def visible_datasets(caller: Caller) -> ColumnElement[bool]:
    """A WHERE clause on Dataset: the rows this caller may see."""
    if caller.sees_everything:
        return true()
    return or_(Dataset.visibility == "public", Dataset.panel_source.is_not(None), Dataset.owner_id == caller.owner_id)


def can_see(caller: Caller, dataset: Dataset) -> bool:
    return (caller.sees_everything or dataset.visibility == "public" or dataset.panel_source is not None
            or dataset.owner_id == caller.owner_id)


def get_dataset(session: Session, caller: Caller, dataset_id: str, kind: str = "dataset") -> Dataset:
    """The dataset if this caller may see it; NotFound alike for missing and hidden ones."""
    dataset = session.get(Dataset, dataset_id)
    if dataset is None or not can_see(caller, dataset):
        raise NotFound(kind, dataset_id)
    return dataset


def get_job(session: Session, caller: Caller, job_id: str) -> Job:
    """The job if this caller may see its dataset; NotFound alike for missing and hidden ones."""
    job = session.get(Job, job_id)
    if job is None or not (job.owner_id == caller.owner_id and caller.key_id or can_see(caller, job.dataset)):
        raise NotFound("job", job_id)
    return job


def check_may_change(caller: Caller, owner_id: str, what: str) -> None:
    """Forbidden unless the caller owns the item or is an admin (or keys are off)."""
    if caller.sees_everything or (caller.key_id and owner_id == caller.key_id):
        return
    raise Forbidden(f"{caller.describe()} may not change {what}: only its owner or an admin key may")


def check_admin(caller: Caller, what: str) -> None:
    if caller.auth_enabled and not caller.admin:
        raise Forbidden(f"{caller.describe()} may not {what}: it takes an admin key (epiplex keys create NAME --admin)")
