"""/v1/panel: the reference panel of transfer targets (built-in members plus the operator's)."""
from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response
from fastapi.responses import JSONResponse

from app.api.deps import CallerDep, ServicesDep, SessionDep, not_found
from app.api.schemas import Page, PanelAdd, PanelMemberOut
from app.auth.access import check_admin
from app.core.models import Dataset
from app.transfer.panel import BUILTIN, OPERATOR, ensure_builtin, members

router = APIRouter(prefix="/v1/panel", tags=["transfer"])


def member_out(dataset: Dataset) -> PanelMemberOut:
    return PanelMemberOut(dataset_id=dataset.id, name=dataset.name, description=dataset.panel_description,
                          builtin=dataset.panel_source == BUILTIN, bytes=dataset.bytes, format=dataset.format,
                          sha256=dataset.sha256)


@router.get("", response_model=Page[PanelMemberOut])
def list_panel(session: SessionDep, services: ServicesDep) -> Page[PanelMemberOut]:
    """Every panel member, by name; the built-in members are stored on first use."""
    ensure_builtin(services)
    items = [member_out(d) for d in members(session)]
    return Page(items=items, total=len(items), limit=len(items), offset=0)


@router.post("", response_model=PanelMemberOut, status_code=201,
             responses={200: {"model": PanelMemberOut, "description": "Already a member; unchanged."},
                        404: {"description": "No such dataset."}})
def add_to_panel(body: PanelAdd, session: SessionDep, services: ServicesDep, caller: CallerDep) -> JSONResponse:
    """Add an uploaded dataset to the panel (201); `transfer: true` jobs measure transfer to it from then on.
    Admin keys only; a panel member is seen by every key."""
    check_admin(caller, "edit the reference panel")
    ensure_builtin(services)  # first, so the built-in members never come after an operator's choice
    dataset = session.get(Dataset, body.dataset_id)
    if dataset is None:
        raise not_found("dataset", body.dataset_id)
    status = 200
    if dataset.panel_source is None:
        dataset.panel_source, dataset.panel_description, status = OPERATOR, body.description, 201
        session.commit()
    return JSONResponse(member_out(dataset).model_dump(mode="json"), status_code=status)


@router.delete("/{dataset_id}", status_code=204,
               responses={404: {"description": "No such dataset, or it is not in the panel."}})
def remove_from_panel(dataset_id: str, session: SessionDep, services: ServicesDep, caller: CallerDep) -> Response:
    """Take a dataset out of the panel; the dataset and transfer measured to it stay. Admin keys only."""
    check_admin(caller, "edit the reference panel")
    ensure_builtin(services)
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise not_found("dataset", dataset_id)
    if dataset.panel_source is None:
        raise HTTPException(404, f"dataset {dataset_id!r} is not in the panel")
    dataset.panel_source = dataset.panel_description = None
    session.commit()
    return Response(status_code=204)
