"""A `Server-Timing` header on every page: how long the app took, for the bench and browsers' dev tools."""
from __future__ import annotations

import time


class ServerTiming:
    """Pure ASGI middleware (no buffering, so server-sent events still stream) timing non-API paths."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(("/v1/", "/static/")):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message) -> None:
            if message["type"] == "http.response.start":
                elapsed_ms = (time.perf_counter() - started) * 1e3
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"server-timing", f"app;dur={elapsed_ms:.2f}".encode())]}
            await send(message)

        await self.app(scope, receive, timed_send)
