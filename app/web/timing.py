"""A `Server-Timing` header on every page: how long the app took (wall and CPU), for the bench and dev tools."""
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
        started, started_cpu = time.perf_counter(), time.process_time()

        async def timed_send(message) -> None:
            if message["type"] == "http.response.start":
                elapsed_ms = (time.perf_counter() - started) * 1e3
                # CPU time of the whole process: what the request cost when nothing else ran (on a
                # shared machine wall time mostly measures waiting for a core).
                cpu_ms = (time.process_time() - started_cpu) * 1e3
                timing = f"app;dur={elapsed_ms:.2f}, cpu;dur={cpu_ms:.2f}".encode()
                message = {**message, "headers": [*message.get("headers", []), (b"server-timing", timing)]}
            await send(message)

        await self.app(scope, receive, timed_send)
