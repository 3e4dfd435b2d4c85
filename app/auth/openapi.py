"""How access control shows in the OpenAPI document: the bearer scheme and the answers the guard gives."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Security
from fastapi.security import HTTPBearer

from app.auth.guard import requires_key

# auto_error=False: the guard decides; this only documents the scheme (and adds /docs' Authorize button).
bearer = HTTPBearer(auto_error=False, description="An API key from `epiplex keys create`; required once a key exists.")

GUARD_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Keys are on and the request has no valid key (`WWW-Authenticate: Bearer`)."},
    403: {"description": "The key may not do this (not the owner, not an admin), or a keyless state change "
          "came from another origin."},
    415: {"description": "A keyless state change whose body is not JSON, multipart or application/octet-stream."},
    421: {"description": "Bound to loopback and the Host header is not a loopback name."},
    429: {"description": "A quota or the request rate of the key is exceeded; see `Retry-After`."},
}


def route_options(router: APIRouter) -> dict[str, Any]:
    """Keyword arguments for `include_router`: /v1 routers get the scheme and the guard's answers."""
    if all(requires_key(getattr(route, "path", "")) for route in router.routes):
        return {"dependencies": [Security(bearer)], "responses": GUARD_RESPONSES}
    return {"responses": {421: GUARD_RESPONSES[421]}}
