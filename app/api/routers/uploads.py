"""Streaming a request body into the blob store: raw bodies and multipart `file` parts alike.

The body is never held whole in memory: chunks are gathered to ~1 MiB and handed to a thread
that hashes, compresses and (for multipart) parses them, so the event loop stays free.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable

from fastapi import HTTPException, Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from app.storage import BlobWriting

BATCH_BYTES = 1 << 20


class _MultipartFileSink:
    """Feeds the body of the multipart part named `file` to a BlobWriter; other parts are only
    named (in `other_parts`)."""

    def __init__(self, boundary: bytes, writer: BlobWriting) -> None:
        self._writer = writer
        self._header_field = b""
        self._header_value = b""
        self._in_file = False
        self.found_file = False
        self.filename: str | None = None
        self.other_parts: list[str] = []
        self.parser = MultipartParser(boundary, callbacks={
            "on_part_begin": self._part_begin, "on_header_field": self._header_field_data,
            "on_header_value": self._header_value_data, "on_header_end": self._header_end,
            "on_part_data": self._part_data, "on_part_end": self._part_end})

    def _part_begin(self) -> None:
        self._in_file = False

    def _header_field_data(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header_field.lower() == b"content-disposition":
            _, options = parse_options_header(self._header_value)
            if options.get(b"name") == b"file" and not self.found_file:
                self._in_file = self.found_file = True
                raw_name = options.get(b"filename")
                self.filename = raw_name.decode("utf-8", "replace") if raw_name else None
            elif options.get(b"name") is not None:
                self.other_parts.append(options[b"name"].decode("utf-8", "replace"))
        self._header_field = self._header_value = b""

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self._writer.write(data[start:end])

    def _part_end(self) -> None:
        self._in_file = False


async def stream_body_to(request: Request, writer: BlobWriting,
                         query_parameters: tuple[str, ...] = ()) -> str | None:
    """Write the upload's bytes into `writer`; returns the multipart file name, if any.

    Raises HTTPException(422) for a multipart body without a `file` part, or with a form field
    named like one of `query_parameters` (which would be silently ignored), HTTPException(400) for
    one cut short (no closing boundary: the file part may be incomplete); BlobTooLarge
    (from the writer) propagates for the caller to answer with 413.
    """
    content_type, options = parse_options_header(request.headers.get("content-type"))
    sink: _MultipartFileSink | None = None
    feed: Callable[[bytes], object] = writer.write
    if content_type == b"multipart/form-data":
        boundary = options.get(b"boundary")
        if not boundary:
            raise HTTPException(422, "multipart body has no boundary")
        sink = _MultipartFileSink(boundary, writer)
        feed = sink.parser.write

    try:
        await _pump(request, feed)
    except MultipartParseError as error:
        raise HTTPException(400, f"malformed multipart body: {error}; nothing was stored") from None
    if sink is None:
        return None
    try:
        sink.parser.finalize()
    except MultipartParseError as error:
        raise HTTPException(400, f"malformed multipart body: {error}; nothing was stored") from None
    if sink.parser.state != MultipartState.END:
        raise HTTPException(400, "multipart body is truncated: it has no closing boundary, so the file part "
                                 "may be incomplete; nothing was stored")
    if not sink.found_file:
        raise HTTPException(422, "multipart body has no part named 'file'")
    misplaced = [name for name in sink.other_parts if name in query_parameters]
    if misplaced:
        example = "&".join(f"{name}=..." for name in misplaced)
        raise HTTPException(422, f"form field(s) {', '.join(map(repr, misplaced))} are not read from the body: "
                                 f"give them in the query string (POST {request.url.path}?{example}); nothing was stored")
    return sink.filename


async def _pump(request: Request, feed: Callable[[bytes], object]) -> None:
    """Hand the body to `feed` in ~1 MiB batches, each in a worker thread."""
    # One batch is processed in a thread while the next is received: hashing, compressing and
    # writing release the GIL, so receiving and storing overlap (order is kept: one in flight).
    loop = asyncio.get_running_loop()
    in_flight: asyncio.Future | None = None
    batch: list[bytes] = []
    batched = 0
    try:
        async for chunk in request.stream():
            batch.append(chunk)
            batched += len(chunk)
            if batched >= BATCH_BYTES:
                if in_flight is not None:
                    await in_flight
                in_flight = loop.run_in_executor(None, feed, b"".join(batch))
                batch, batched = [], 0
        if in_flight is not None:
            await in_flight
        if batch:
            await loop.run_in_executor(None, feed, b"".join(batch))
    finally:
        if in_flight is not None and not in_flight.done():
            # The client went away mid-upload: let the thread finish before the writer is closed.
            await asyncio.wait([in_flight])
