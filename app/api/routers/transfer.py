"""/v1/transfer and /v1/datasets/{id}/transfer: measure transfer from a dataset, read measured and predicted."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from app.api.deps import CallerDep, ServicesDep, SessionDep
from app.api.routers.jobs import job_response
from app.api.schemas import DatasetTransferOut, JobOut, TransferRequest
from app.transfer import service

router = APIRouter(tags=["transfer"])

TRANSFER_DOC = """Measure how much training on `source` helps code each target: bits saved per byte of
the target when training on it starts from the source's trained model instead of from scratch.

This is a job (**202**, or **200** with the existing job when the same request was made before):
the source's model is reused from its succeeded scoring job with the same settings, and the source
is scored first when it has none. Pairs already measured are not measured again. Each target is
queued for scoring too (with the same settings), so that predictions can use its figures.
Read the rows at `GET /v1/datasets/{source}/transfer`."""


@router.post("/v1/transfer", response_model=JobOut, status_code=202, description=TRANSFER_DOC,
             responses={200: {"model": JobOut, "description": "The same request was made before: its job."},
                        404: {"description": "No such source or target dataset."},
                        422: {"description": "Invalid settings or targets."}})
def request_transfer(body: TransferRequest, session: SessionDep, services: ServicesDep,
                     caller: CallerDep) -> JSONResponse:
    submitted = service.request_transfer(session, services, caller, body.source, body.targets, body.job_settings())
    return job_response(submitted)


@router.get("/v1/datasets/{dataset_id}/transfer", response_model=DatasetTransferOut,
            responses={404: {"description": "No such dataset (or target)."}})
def get_dataset_transfer(
    dataset_id: str, session: SessionDep, services: ServicesDep, caller: CallerDep,
    targets: Annotated[str | None, Query(description="Comma-separated dataset ids to predict transfer to, "
                                         "besides the panel members.")] = None,
) -> DatasetTransferOut:
    """Measured transfer from this dataset, and predicted transfer to the panel (and `targets`) where
    not measured, with the predictor's fit quality and the number of pairs it learned from."""
    wanted = [t.strip() for t in (targets or "").split(",") if t.strip()]
    return service.transfer_report(session, services, caller, dataset_id, wanted)
