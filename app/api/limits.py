"""Request limits enforced before any route runs: the size of JSON (non-upload) bodies.

Uploads stream to the blob store under their own limit (`max_upload_bytes`); every other body
is small JSON, so it is read here up to `max_json_body_bytes` and replayed to the route, and a
larger one is answered 413 without holding more than the limit in memory.
"""
from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Streamed to storage with their own limit; never buffered here.
STREAMED_BODIES = {("POST", "/v1/datasets")}


class JsonBodyLimit:
    """413 for a request body over `max_bytes`, declared (Content-Length) or streamed (chunked)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], scope["path"].rstrip("/")) in STREAMED_BODIES:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break  # the client left; the route sees the disconnect
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": f"request body exceeds the limit of {self.max_bytes} bytes for JSON "
                                     "requests; upload data with POST /v1/datasets"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
