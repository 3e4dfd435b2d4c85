"""The access guard, an ASGI middleware in front of every route and page:

1. While bound to loopback, the Host header must name loopback (421 otherwise): a DNS-rebinding
   page reaches 127.0.0.1 under its own name, and is turned away here.
2. Keys: a `Authorization: Bearer` key is looked up (by its sha256); with keys on, every /v1
   route needs a valid one (401 with `WWW-Authenticate: Bearer`). The caller lands in
   `request.state.caller` (see `app.auth.access.Caller`). Keys turn on once one exists: until
   then the guard looks for a first key at most once a second.
3. Requests without a key that change state (POST, PUT, PATCH, DELETE) must not come from another
   origin (403), and a body must be JSON, multipart or raw `application/octet-stream` (415):
   `text/plain` and form encodings are what a foreign page can send without a CORS preflight.
4. Requests with a key are rate limited per key (429 with Retry-After), with the `limits` library.
"""
from __future__ import annotations

import json
import math
import time
from urllib.parse import urlsplit

from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from app.auth.access import OPEN, Caller
from app.auth.keys import any_key_created, find_active_key
from app.auth.loopback import host_name, is_loopback
from app.core.settings import Settings

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Content types a browser cannot send cross-origin without a preflight (which this server never allows);
# multipart can be sent, which is why a foreign Origin is refused as well.
BODY_TYPES = ("application/json", "multipart/form-data", "application/octet-stream")


KEY_CHECK_SECONDS = 1.0  # while no key exists, how often the guard looks for a first one

# Probes and metrics: never keyed, and never made to wait for the database by the guard.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def requires_key(path: str) -> bool:
    """Every /v1 route needs a key once keys are on; health, metrics and pages do not."""
    return path == "/v1" or path.startswith("/v1/")


class AccessGuard:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.check_host = is_loopback(settings.host)
        self.allowed_hosts = {h.lower() for h in settings.allowed_hosts}
        # Once keys exist they stay on (rows are never deleted), so this is only ever asked until True,
        # and at most once per KEY_CHECK_SECONDS: a database round trip on every request was 8% of
        # a dataset list's time. A first key therefore takes effect within that time.
        self._keys_on = settings.auth == "keys"
        self._keys_checked_at = -math.inf
        self.limits = parse_many(settings.rate_limit) if settings.rate_limit.strip() else []
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        refusal = self._check_host(headers)
        if refusal is None and scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        caller = OPEN
        if refusal is None:
            caller, refusal = await self._authenticate(scope, headers)
        if refusal is None and caller.key_id is None and scope["method"] in STATE_CHANGING:
            refusal = self._check_browser_safe(headers)
        if refusal is None and caller.key_id is not None and not caller.admin:
            refusal = self._check_rate(caller)
        if refusal is not None:
            status, detail, extra = refusal
            body = json.dumps({"detail": detail}).encode()
            await send({"type": "http.response.start", "status": status, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                *[(k.lower().encode(), v.encode()) for k, v in extra.items()]]})
            await send({"type": "http.response.body", "body": body})
            return
        scope.setdefault("state", {})["caller"] = caller
        await self.app(scope, receive, send)

    def _check_host(self, headers: Headers):
        if not self.check_host:
            return None
        name = host_name(headers.get("host", "")).lower()
        if is_loopback(name) or name in self.allowed_hosts:
            return None
        return (421, f"Host {headers.get('host', '')!r} is not a loopback name: this server is bound to "
                f"{self.settings.host} and answers only to 127.0.0.1, localhost or [::1] "
                "(add a proxy's name with EPIPLEX_ALLOWED_HOSTS)", {})

    async def _authenticate(self, scope: Scope, headers: Headers):
        services = scope["app"].state.services
        scheme, _, secret = headers.get("authorization", "").partition(" ")
        if secret.strip() and scheme.lower() == "bearer":
            key = await run_in_threadpool(self._lookup, services, secret.strip())
            if key is not None:
                self._keys_on = True
                return Caller(key.id, key.name, key.admin, auth_enabled=True), None
            if requires_key(scope["path"]):
                return OPEN, (401, "the API key is not valid (unknown or revoked); send a key from "
                              "`epiplex keys create` as Authorization: Bearer KEY", {"WWW-Authenticate": "Bearer"})
        if not self._keys_on and time.monotonic() - self._keys_checked_at >= KEY_CHECK_SECONDS:
            self._keys_checked_at = time.monotonic()
            self._keys_on = await run_in_threadpool(self._any_key, services)
        if not self._keys_on:
            return OPEN, None
        if requires_key(scope["path"]):
            return OPEN, (401, "this server requires an API key: send Authorization: Bearer KEY (the CLI and "
                          "client read EPIPLEX_API_KEY; create one with `epiplex keys create NAME`)",
                          {"WWW-Authenticate": "Bearer"})
        return Caller(auth_enabled=True), None

    @staticmethod
    def _lookup(services, secret: str):
        with services.sessions() as session:
            return find_active_key(session, secret)

    @staticmethod
    def _any_key(services) -> bool:
        with services.sessions() as session:
            return any_key_created(session)

    def _check_browser_safe(self, headers: Headers):
        origin = headers.get("origin")
        if origin is not None and urlsplit(origin).netloc.lower() != headers.get("host", "").lower():
            return (403, f"cross-origin request from {origin!r} refused: state changes without a key must come "
                    "from this server's own pages or from a non-browser client", {})
        has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
        media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if has_body and media_type not in BODY_TYPES:
            return (415, f"content type {media_type or '(none)'!r} refused for {', '.join(sorted(STATE_CHANGING))}: "
                    "send JSON (application/json), a multipart form, or raw bytes as application/octet-stream", {})
        return None

    def _check_rate(self, caller: Caller):
        for item in self.limits:
            if not self.limiter.hit(item, caller.owner_id):
                reset = self.limiter.get_window_stats(item, caller.owner_id).reset_time
                retry = max(1, math.ceil(reset - time.time()))
                return (429, f"rate limit: {caller.describe()} may make {item} requests "
                        "(EPIPLEX_RATE_LIMIT); slow down", {"Retry-After": str(retry)})
        return None
