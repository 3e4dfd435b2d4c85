"""Transfer requests and reports: what `/v1/transfer` and `/v1/datasets/{id}/transfer` do."""
from __future__ import annotations

from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.schemas import DatasetTransferOut
from app.auth import access
from app.auth.access import Caller
from app.core.errors import ServiceError
from app.core.models import Dataset
from app.jobs.service import Submitted, submit_job
from app.jobs.settings import JobSettings
from app.services import Services
from app.transfer.panel import ensure_builtin
from app.transfer.report import dataset_transfer


def request_transfer(session: Session, services: Services, caller: Caller, source: str,
                     targets: list[str] | Literal["panel"], settings: JobSettings) -> Submitted:
    """The job that scores `source` (if needed) and measures transfer from it to `targets`."""
    access.get_dataset(session, caller, source, kind="source dataset")
    return submit_job(session, services, caller, source, settings, True if targets == "panel" else targets)


def transfer_report(session: Session, services: Services, caller: Caller, dataset_id: str,
                    targets: list[str]) -> DatasetTransferOut:
    """Measured transfer from the dataset, and predicted transfer to the panel and `targets`
    (only targets the caller may see)."""
    ensure_builtin(services)
    dataset = access.get_dataset(session, caller, dataset_id)
    wanted = list(dict.fromkeys(targets))
    extra = list(session.scalars(select(Dataset).where(Dataset.id.in_(wanted), access.visible_datasets(caller)))
                 ) if wanted else []
    missing = sorted(set(wanted) - {d.id for d in extra})
    if missing:
        raise ServiceError(f"target dataset(s) not found: {', '.join(map(repr, missing))}", 404)
    return dataset_transfer(session, dataset, extra, visible=access.visible_datasets(caller))
