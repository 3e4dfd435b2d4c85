"""The OpenAPI document as the service really answers: error shapes, limits, the upload body.

FastAPI documents its own 422 shape and nothing about middleware answers; this rewrites the
generated spec once so that every status a route can return is listed with the body it carries.
"""
from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field


class ErrorOut(BaseModel):
    """Every error answer: one readable sentence saying what to fix."""

    detail: str


class ValidationProblem(BaseModel):
    """One invalid field: where it is, what is wrong (the value itself is never echoed)."""

    loc: list[str | int] = Field(description='Path to the field, e.g. ["body", "budgets", 0] or ["query", "offset"].')
    msg: str
    type: str = Field(description="Kind of problem, e.g. missing, greater_than_equal, finite_number, json_invalid.")


class ValidationErrorOut(BaseModel):
    """422: the request is well-formed HTTP but its values are not acceptable (or its JSON does not parse)."""

    detail: str = Field(description="All problems as one sentence.")
    errors: list[ValidationProblem] = Field(description="One entry per invalid field; empty when the problem is "
                                            "the content as a whole (e.g. an upload not matching its format).")


UPLOAD_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary", "description": "The dataset's bytes."}}}}}}}


def _ref(name: str) -> dict:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}


ERRORS = {400: "Malformed request.", 404: "Not found.", 405: "Method not allowed.", 409: "Conflict.",
          413: "Request body too large.", 422: "Invalid values."}


# OpenAPI links, so generated clients and stateful tests follow a new resource to what uses it:
# (path, method, status) -> [(link name, target path, target method, parameters, request body)].
DATASET_ID = "$response.body#/id"
LINKS: dict[tuple[str, str, str], list[tuple[str, str, str, dict, Any]]] = {
    ("/v1/datasets", "post", status): [
        ("GetDataset", "/v1/datasets/{dataset_id}", "get", {"dataset_id": DATASET_ID}, None),
        ("DownloadDataset", "/v1/datasets/{dataset_id}/content", "get", {"dataset_id": DATASET_ID}, None),
        ("GetDatasetTransfer", "/v1/datasets/{dataset_id}/transfer", "get", {"dataset_id": DATASET_ID}, None),
        ("ScoreDataset", "/v1/jobs", "post", {}, {"dataset_id": DATASET_ID, "budgets": [1e9]}),
        ("DeleteDataset", "/v1/datasets/{dataset_id}", "delete", {"dataset_id": DATASET_ID}, None),
    ] for status in ("200", "201")}
for _status in ("200", "202"):
    LINKS[("/v1/jobs", "post", _status)] = [
        ("GetJob", "/v1/jobs/{job_id}", "get", {"job_id": "$response.body#/id"}, None),
        ("CancelJob", "/v1/jobs/{job_id}/cancel", "post", {"job_id": "$response.body#/id"}, None),
    ]


def _add_links(spec: dict) -> None:
    paths = spec.get("paths", {})
    for (path, method, status), links in LINKS.items():
        response = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        if response is None:
            continue
        for name, target_path, target_method, parameters, body in links:
            target = paths.get(target_path, {}).get(target_method)
            if target is None:
                continue
            link: dict[str, Any] = {"operationId": target["operationId"], "parameters": parameters}
            if body is not None:
                link["requestBody"] = body
            response.setdefault("links", {})[name] = link


def contract_openapi(app: FastAPI) -> dict:
    """The app's OpenAPI document with error answers documented; cached on the app."""
    if app.openapi_schema:
        return app.openapi_schema
    spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for model in (ErrorOut, ValidationProblem, ValidationErrorOut):
        schemas[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if "requestBody" in operation:  # the body limit applies, and the JSON may not parse
                responses.setdefault("400", {"description": "The body could not be read (e.g. not UTF-8)."})
                responses.setdefault("413", {"description": ERRORS[413]})
                responses.setdefault("422", {"description": ERRORS[422]})
            if "422" in responses:
                responses["422"]["content"] = _ref("ValidationErrorOut")
                if responses["422"].get("description") == "Validation Error":
                    responses["422"]["description"] = ERRORS[422]
            for code, response in responses.items():
                if code.startswith("4") and "content" not in response:
                    response["content"] = _ref("ErrorOut")
    _add_links(spec)
    app.openapi_schema = spec
    return spec
