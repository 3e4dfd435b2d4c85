"""Transfer requests and reports: what `/v1/transfer` and `/v1/datasets/{id}/transfer` do."""
from __future__ import annotations

from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.schemas import DatasetTransferOut
from app.core.errors import NotFound, ServiceError
from app.core.models import Dataset
from app.jobs.service import Submitted, submit_job
from app.jobs.settings import JobSettings
from app.services import Services
from app.transfer.panel import ensure_builtin
from app.transfer.report import dataset_transfer


def request_transfer(session: Session, services: Services, source: str, targets: list[str] | Literal["panel"],
                     settings: JobSettings) -> Submitted:
    """The job that scores `source` (if needed) and measures transfer from it to `targets`."""
    if session.get(Dataset, source) is None:
        raise NotFound("source dataset", source)
    return submit_job(session, services, source, settings, True if targets == "panel" else targets)


def transfer_report(session: Session, services: Services, dataset_id: str, targets: list[str]) -> DatasetTransferOut:
    """Measured transfer from the dataset, and predicted transfer to the panel and `targets`."""
    ensure_builtin(services)
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise NotFound("dataset", dataset_id)
    wanted = list(dict.fromkeys(targets))
    extra = list(session.scalars(select(Dataset).where(Dataset.id.in_(wanted)))) if wanted else []
    missing = sorted(set(wanted) - {d.id for d in extra})
    if missing:
        raise ServiceError(f"target dataset(s) not found: {', '.join(map(repr, missing))}", 404)
    return dataset_transfer(session, dataset, extra)
