"""Errors services raise for the caller to show: the API turns them into 4xx answers, the CLIs into messages."""
from __future__ import annotations


class ServiceError(Exception):
    """A request the service cannot carry out as asked; `status_code` is the HTTP status it maps to."""

    status_code = 422
    # Extra response headers, e.g. Retry-After on a 429.
    headers: dict[str, str] | None = None

    def __init__(self, detail: str, status_code: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if status_code is not None:
            self.status_code = status_code


class NotFound(ServiceError):
    status_code = 404

    def __init__(self, kind: str, item_id: str) -> None:
        # An id is echoed only in part: a client that sent megabytes does not get them back.
        shown = item_id if len(item_id) <= 100 else f"{item_id[:100]}..."
        super().__init__(f"{kind} {shown!r} not found")


class Conflict(ServiceError):
    status_code = 409


def describe_problems(problems: list[dict]) -> str:
    """Pydantic's validation errors as one readable sentence: "field: what is wrong; ..."."""
    def one(error: dict) -> str:
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "body"
        return f"{where}: {error.get('msg', 'invalid')}"

    return "; ".join(one(p) for p in problems)
