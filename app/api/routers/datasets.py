"""/v1/datasets: upload (streamed, content-addressed), list, read, download, delete."""
from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from app.api.contract import UPLOAD_BODY
from app.api.deps import CallerDep, PageLimit, PageOffset, ServicesDep, SessionDep
from app.api.leaderboard_cache import note_visibility_change
from app.api.routers.uploads import stream_body_to
from app.api.schemas import DatasetOut, DatasetPatch, Page, Visibility
from app.auth import access, quotas
from app.auth.access import Caller
from app.core.ids import new_id
from app.core.models import Dataset
from app.services import Services
from app.storage import BlobTooLarge, BlobWriting, StorageUnavailable
from app.transfer.step import delete_models

log = logging.getLogger("epiplex.api.datasets")
router = APIRouter(prefix="/v1/datasets", tags=["datasets"])

UPLOAD_DOC = """Upload a dataset by streaming it: either the raw request body (any content type) or a
multipart form with a `file` part (`name`, `format` and `visibility` go in the query string; as
form fields they are refused with 422). It is hashed (sha256) and zstd-compressed on the way to disk.

Returns **201** with the new record, or **200** with the existing one when the same bytes were
already uploaded in the same format by the same key (another key's upload of the same bytes is
a separate record: nothing tells one owner what another has uploaded). **400** when the body did not arrive whole (a multipart body
without its closing boundary, or the client hung up): nothing is stored. **413** when larger than
the configured maximum, **422** for an unknown format, an empty upload, or content that does not
match its format (e.g. invalid UTF-8 for `text`, JSONL/CSV whose selected values are all
empty, an empty `.npy` array, or `.npy` tokens that are not non-negative integers below the
vocabulary cap of 65,536 ids), with a message saying what to fix. **503** when object storage cannot be reached; nothing is
recorded then, so retry later.
"""


FORMAT_PATTERN = "^(bytes|text|tokens|(jsonl|csv):.+)$"  # documented; check_format says what is wrong


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
        validate_file(path, fmt)  # also refuses empty content: an empty .npy, all-empty values
    except DataFormatError as error:
        raise HTTPException(422, f"content does not match format {fmt!r}: {error}") from None


@router.post("", response_model=DatasetOut, status_code=201, description=UPLOAD_DOC,
             openapi_extra=UPLOAD_BODY,
             responses={200: {"model": DatasetOut, "description": "Already uploaded; the existing record."},
                        400: {"description": "The body did not arrive whole; nothing stored."},
                        413: {"description": "Upload too large."},
                        422: {"description": "Unknown format, empty upload, or content not matching it."},
                        503: {"description": "Object storage unreachable; nothing was stored."}})
async def upload_dataset(
    request: Request, services: ServicesDep, caller: CallerDep,
    name: Annotated[str | None, Query(max_length=500, description="Display name; defaults to the file name.")] = None,
    format: Annotated[str, Query(max_length=200,  # the column's width (PostgreSQL enforces it)
                                 description="bytes | text | jsonl:FIELD | csv:COLUMN | tokens",
                                 json_schema_extra={"pattern": FORMAT_PATTERN})] = "bytes",
    visibility: Annotated[Visibility | None, Query(description="private (the default with a key) or public; "
                                                   "without keys everything is public.")] = None,
):
    check_format(format)
    limit = services.settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + (64 << 10):  # slack for multipart framing
        raise HTTPException(413, f"upload of {declared} bytes exceeds the maximum of {limit} bytes")
    await run_in_threadpool(_check_quota, services, caller, 0)  # refuse before reading when already full
    # Plain bytes need no validation, so they skip the raw copy kept for validators.
    try:
        writer = services.blobs.writer(limit, keep_raw=format != "bytes")
    except StorageUnavailable as error:
        raise _unavailable(error) from None
    try:
        try:
            filename = await stream_body_to(request, writer, ("name", "format", "visibility"))
        except BlobTooLarge as error:
            raise HTTPException(413, str(error)) from None
        except ClientDisconnect:  # nothing is stored from a body that did not arrive whole
            log.info("upload abandoned by the client", extra={"bytes_received": writer.bytes_written})
            return JSONResponse({"detail": "the upload did not arrive whole; nothing was stored"}, status_code=400)
        await run_in_threadpool(writer.finish)
        if writer.bytes_written == 0:
            raise HTTPException(422, "the upload is empty")
        if writer.raw_path is not None:
            await run_in_threadpool(_validate_content, writer.raw_path, format)
        # A multipart file name has no length limit of its own; the column holds 500 characters.
        return await run_in_threadpool(_record, services, caller, writer, (name or filename or "unnamed")[:500], format,
                                       visibility or caller.default_visibility)
    except StorageUnavailable as error:
        raise _unavailable(error) from None
    finally:
        await run_in_threadpool(writer.close)


def _unavailable(error: StorageUnavailable) -> HTTPException:
    log.warning("object storage unavailable", extra={"error": str(error)})
    return HTTPException(503, "object storage is unavailable, so nothing was stored; retry later "
                              f"({error})", headers={"Retry-After": "30"})


def _check_quota(services: Services, caller: Caller, adding: int) -> None:
    with services.sessions() as session:
        quotas.check_stored_bytes(session, services.settings, caller, adding)


def _record(services: Services, caller: Caller, writer: BlobWriting, name: str, fmt: str,
            visibility: str) -> JSONResponse:
    """Store the blob and its record, or answer with the record these bytes already have for this owner."""
    sha256 = writer.sha256
    mine = (Dataset.sha256 == sha256, Dataset.format == fmt, Dataset.owner_id == caller.owner_id)
    with services.blobs.lock, services.sessions() as session:
        existing = session.scalar(select(Dataset).where(*mine))
        if existing:
            return JSONResponse(DatasetOut.model_validate(existing).model_dump(mode="json"), status_code=200)
        quotas.check_stored_bytes(session, services.settings, caller, writer.bytes_written)
        blob = writer.commit()
        dataset = Dataset(id=new_id("ds"), sha256=blob.sha256, format=fmt, name=name, bytes=blob.bytes,
                          stored_bytes=blob.stored_bytes, owner_id=caller.owner_id, visibility=visibility)
        session.add(dataset)
        try:
            session.commit()
        except IntegrityError:  # the same bytes raced in through another request
            session.rollback()
            existing = session.scalar(select(Dataset).where(*mine))
            return JSONResponse(DatasetOut.model_validate(existing).model_dump(mode="json"), status_code=200)
        log.info("dataset stored", extra={"dataset_id": dataset.id, "bytes": blob.bytes,
                                          "stored_bytes": blob.stored_bytes, "format": fmt})
        return JSONResponse(DatasetOut.model_validate(dataset).model_dump(mode="json"), status_code=201)


@router.get("", response_model=Page[DatasetOut])
def list_datasets(session: SessionDep, caller: CallerDep,
                  limit: PageLimit = 50,
                  offset: PageOffset = 0) -> Page[DatasetOut]:
    """Datasets the caller may see (its own, public ones, the panel), newest first."""
    seen = access.visible_datasets(caller)
    total = session.scalar(select(func.count()).select_from(Dataset).where(seen))
    rows = session.scalars(select(Dataset).where(seen).order_by(Dataset.created_at.desc(), Dataset.id.desc())
                           .limit(limit).offset(offset)).all()
    return Page(items=[DatasetOut.model_validate(r) for r in rows], total=total, limit=limit, offset=offset)


@router.get("/{dataset_id}", response_model=DatasetOut, responses={404: {"description": "No such dataset."}})
def get_dataset(dataset_id: str, session: SessionDep, caller: CallerDep) -> DatasetOut:
    return DatasetOut.model_validate(access.get_dataset(session, caller, dataset_id))


@router.patch("/{dataset_id}", response_model=DatasetOut, responses={404: {"description": "No such dataset."}})
def update_dataset(dataset_id: str, body: DatasetPatch, session: SessionDep, caller: CallerDep) -> DatasetOut:
    """Publish a dataset (`visibility: public`) or make it private again; its owner or an admin only."""
    dataset = access.get_dataset(session, caller, dataset_id)
    access.check_may_change(caller, dataset.owner_id, f"dataset {dataset_id!r}")
    if dataset.visibility != body.visibility:
        dataset.visibility = body.visibility
        note_visibility_change(session)
        session.commit()
    return DatasetOut.model_validate(dataset)


@router.get("/{dataset_id}/content", response_class=StreamingResponse,
            responses={200: {"content": {"application/octet-stream": {}}}, 404: {"description": "No such dataset."}})
def download_dataset(dataset_id: str, session: SessionDep, services: ServicesDep,
                     caller: CallerDep) -> StreamingResponse:
    """The uploaded bytes, exactly as they were sent."""
    dataset = access.get_dataset(session, caller, dataset_id)
    try:
        if not services.blobs.exists(dataset.sha256):
            raise HTTPException(500, f"the blob of dataset {dataset_id!r} is missing from storage")
    except StorageUnavailable as error:
        raise _unavailable(error) from None
    return StreamingResponse(services.blobs.iter_chunks(dataset.sha256), media_type="application/octet-stream",
                             headers={"Content-Length": str(dataset.bytes), "ETag": f'"{dataset.sha256}"'})


@router.delete("/{dataset_id}", status_code=204, responses={404: {"description": "No such dataset."}})
def delete_dataset(dataset_id: str, session: SessionDep, services: ServicesDep, caller: CallerDep) -> Response:
    """Delete the dataset, its jobs (running ones are stopped), their kept models and the transfer
    measured from or to it; the blob goes when nothing uses it. Its owner or an admin only."""
    dataset = access.get_dataset(session, caller, dataset_id)
    access.check_may_change(caller, dataset.owner_id, f"dataset {dataset_id!r}")
    sha256 = dataset.sha256
    with services.blobs.lock:
        session.delete(dataset)
        session.commit()
        if not session.scalar(select(func.count()).select_from(Dataset).where(Dataset.sha256 == sha256)):
            try:
                services.blobs.delete(sha256)
            except StorageUnavailable:  # the row is gone; garbage collection removes the blob later
                log.warning("blob left for garbage collection", extra={"sha256": sha256})
    try:
        delete_models(services.blobs, dataset_id)
    except StorageUnavailable:
        log.warning("kept models left for garbage collection", extra={"dataset_id": dataset_id})
    return Response(status_code=status.HTTP_204_NO_CONTENT)
