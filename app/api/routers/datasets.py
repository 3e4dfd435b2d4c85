"""/v1/datasets: upload (streamed, content-addressed), list, read, download, delete."""
from __future__ import annotations

import logging
import shutil
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from app.api.deps import ServicesDep, SessionDep, not_found
from app.api.routers.uploads import stream_body_to
from app.api.schemas import DatasetOut, Page
from app.core.ids import new_id
from app.core.models import Dataset
from app.services import Services
from app.storage import BlobTooLarge, BlobWriting, StorageUnavailable

log = logging.getLogger("epiplex.api.datasets")
router = APIRouter(prefix="/v1/datasets", tags=["datasets"])

UPLOAD_DOC = """Upload a dataset by streaming it: either the raw request body (any content type) or a
multipart form with a `file` part. It is hashed (sha256) and zstd-compressed on the way to disk.

Returns **201** with the new record, or **200** with the existing one when the same bytes were
already uploaded in the same format. **413** when larger than the configured maximum,
**422** for an unknown format or content that does not match it (e.g. invalid UTF-8 for `text`).
**503** when object storage cannot be reached; nothing is recorded then, so retry later.
"""


def check_format(fmt: str) -> None:
    """422 for a format string the estimators do not know."""
    from estimators.data import DataFormatError, check_format as estimators_check_format

    try:
        estimators_check_format(fmt)
    except DataFormatError as error:
        raise HTTPException(422, str(error)) from None


def _validate_content(path, fmt: str) -> None:
    from estimators.data import DataFormatError, validate_file

    try:
        validate_file(path, fmt)
    except DataFormatError as error:
        raise HTTPException(422, f"content does not match format {fmt!r}: {error}") from None


@router.post("", response_model=DatasetOut, status_code=201, description=UPLOAD_DOC,
             responses={200: {"model": DatasetOut, "description": "Already uploaded; the existing record."},
                        413: {"description": "Upload too large."},
                        422: {"description": "Unknown format, or content not matching it."},
                        503: {"description": "Object storage unreachable; nothing was stored."}})
async def upload_dataset(
    request: Request, services: ServicesDep,
    name: Annotated[str | None, Query(max_length=500, description="Display name; defaults to the file name.")] = None,
    format: Annotated[str, Query(description="bytes | text | jsonl:FIELD | csv:COLUMN | tokens")] = "bytes",
):
    check_format(format)
    limit = services.settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + (64 << 10):  # slack for multipart framing
        raise HTTPException(413, f"upload of {declared} bytes exceeds the maximum of {limit} bytes")
    # Plain bytes need no validation, so they skip the raw copy kept for validators.
    try:
        writer = services.blobs.writer(limit, keep_raw=format != "bytes")
    except StorageUnavailable as error:
        raise _unavailable(error) from None
    try:
        try:
            filename = await stream_body_to(request, writer)
        except BlobTooLarge as error:
            raise HTTPException(413, str(error)) from None
        except ClientDisconnect:  # nothing is stored from a body that did not arrive whole
            log.info("upload abandoned by the client", extra={"bytes_received": writer.bytes_written})
            return Response(status_code=400)
        await run_in_threadpool(writer.finish)
        if writer.bytes_written == 0:
            raise HTTPException(422, "the upload is empty")
        if writer.raw_path is not None:
            await run_in_threadpool(_validate_content, writer.raw_path, format)
        return await run_in_threadpool(_record, services, writer, name or filename or "unnamed", format)
    except StorageUnavailable as error:
        raise _unavailable(error) from None
    finally:
        await run_in_threadpool(writer.close)


def _unavailable(error: StorageUnavailable) -> HTTPException:
    log.warning("object storage unavailable", extra={"error": str(error)})
    return HTTPException(503, "object storage is unavailable, so nothing was stored; retry later "
                              f"({error})", headers={"Retry-After": "30"})


def _record(services: Services, writer: BlobWriting, name: str, fmt: str) -> JSONResponse:
    """Store the blob and its record, or answer with the record these bytes already have."""
    sha256 = writer.sha256
    with services.blobs.lock, services.sessions() as session:
        existing = session.scalar(select(Dataset).where(Dataset.sha256 == sha256, Dataset.format == fmt))
        if existing:
            return JSONResponse(DatasetOut.model_validate(existing).model_dump(mode="json"), status_code=200)
        blob = writer.commit()
        dataset = Dataset(id=new_id("ds"), sha256=blob.sha256, format=fmt, name=name,
                          bytes=blob.bytes, stored_bytes=blob.stored_bytes)
        session.add(dataset)
        try:
            session.commit()
        except IntegrityError:  # the same bytes raced in through another request
            session.rollback()
            existing = session.scalar(select(Dataset).where(Dataset.sha256 == sha256, Dataset.format == fmt))
            return JSONResponse(DatasetOut.model_validate(existing).model_dump(mode="json"), status_code=200)
        log.info("dataset stored", extra={"dataset_id": dataset.id, "bytes": blob.bytes,
                                          "stored_bytes": blob.stored_bytes, "format": fmt})
        return JSONResponse(DatasetOut.model_validate(dataset).model_dump(mode="json"), status_code=201)


@router.get("", response_model=Page[DatasetOut])
def list_datasets(session: SessionDep,
                  limit: Annotated[int, Query(ge=1, le=500)] = 50,
                  offset: Annotated[int, Query(ge=0)] = 0) -> Page[DatasetOut]:
    """Datasets, newest first."""
    total = session.scalar(select(func.count()).select_from(Dataset))
    rows = session.scalars(select(Dataset).order_by(Dataset.created_at.desc(), Dataset.id)
                           .limit(limit).offset(offset)).all()
    return Page(items=[DatasetOut.model_validate(r) for r in rows], total=total, limit=limit, offset=offset)


@router.get("/{dataset_id}", response_model=DatasetOut, responses={404: {"description": "No such dataset."}})
def get_dataset(dataset_id: str, session: SessionDep) -> DatasetOut:
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise not_found("dataset", dataset_id)
    return DatasetOut.model_validate(dataset)


@router.get("/{dataset_id}/content", response_class=StreamingResponse,
            responses={200: {"content": {"application/octet-stream": {}}}, 404: {"description": "No such dataset."}})
def download_dataset(dataset_id: str, session: SessionDep, services: ServicesDep) -> StreamingResponse:
    """The uploaded bytes, exactly as they were sent."""
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise not_found("dataset", dataset_id)
    try:
        if not services.blobs.exists(dataset.sha256):
            raise HTTPException(500, f"the blob of dataset {dataset_id!r} is missing from storage")
    except StorageUnavailable as error:
        raise _unavailable(error) from None
    return StreamingResponse(services.blobs.iter_chunks(dataset.sha256), media_type="application/octet-stream",
                             headers={"Content-Length": str(dataset.bytes), "ETag": f'"{dataset.sha256}"'})


@router.delete("/{dataset_id}", status_code=204, responses={404: {"description": "No such dataset."}})
def delete_dataset(dataset_id: str, session: SessionDep, services: ServicesDep) -> Response:
    """Delete the dataset, its jobs (running ones are stopped), their kept models and the transfer
    measured from or to it; the blob goes when nothing uses it."""
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise not_found("dataset", dataset_id)
    sha256 = dataset.sha256
    with services.blobs.lock:
        session.delete(dataset)
        session.commit()
        if not session.scalar(select(func.count()).select_from(Dataset).where(Dataset.sha256 == sha256)):
            try:
                services.blobs.delete(sha256)
            except StorageUnavailable:  # the row is gone; garbage collection removes the blob later
                log.warning("blob left for garbage collection", extra={"sha256": sha256})
    shutil.rmtree(services.settings.models_dir / dataset_id, ignore_errors=True)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
