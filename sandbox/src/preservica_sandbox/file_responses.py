"""Streaming files from disk with HTTP ``Range`` support: the answer of every download in the sandbox.

``file_response(request, path, ...)`` is what every download in the sandbox answers with (export zips,
bitstream content, access copies):

- ``200`` with the whole file, ``Content-Length`` and ``Accept-Ranges: bytes``;
- ``Range: bytes=a-``, ``bytes=a-b`` or ``bytes=-n`` (one range) -> ``206`` with
  ``Content-Range: bytes a-b/size`` and exactly those bytes (``b`` past the end is clipped);
- a range that cannot be satisfied (``a`` at or past the end, ``a > b``, ``-0``, any range of an empty
  file) -> ``416`` with ``Content-Range: bytes */size`` and a JSON message;
- a ``Range`` header that is not one byte range (another unit, several ranges, garbage) is ignored,
  as RFC 9110 allows: the whole file, ``200``;
- ``HEAD`` answers the same headers without a body.

The body is read from disk in 1 MiB chunks on a worker thread and sent as it is read, so memory stays
flat whatever the size; the stream stops as soon as the client goes away.
"""

from __future__ import annotations

import mimetypes
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import anyio
from fastapi import Request, Response
from starlette.types import Receive, Scope, Send

from .errors import SandboxHTTPError, error_response

CHUNK_SIZE = 1 << 20
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


class RangeNotSatisfiable(Exception):
    """A single byte range that selects nothing of the file."""


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one byte range ``header`` asks for, ``None`` for the whole file, or ``RangeNotSatisfiable``."""
    if not header:
        return None
    match = _RANGE.match(header)
    if match is None:
        return None  # another unit, several ranges or garbage: ignored (RFC 9110 §14.2)
    first, last = match.group(1), match.group(2)
    if not first and not last:
        return None
    if not first:  # suffix range: the last n bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiable
    return ByteRange(start, min(end, size - 1))


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name and the RFC 5987 UTF-8 form."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class FileStreamResponse(Response):
    """Sends ``length`` bytes of ``path`` from ``offset``, chunk by chunk, stopping if the client leaves."""

    def __init__(
        self,
        path: Path,
        offset: int,
        length: int,
        status_code: int,
        headers: dict[str, str],
        media_type: str,
        send_body: bool = True,
    ) -> None:
        super().__init__(content=None, status_code=status_code, headers=headers, media_type=media_type)
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self.raw_headers.append((b"content-length", str(length).encode("latin-1")))
        self.path = path
        self.offset = offset
        self.length = length
        self.send_body = send_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        if not self.send_body or self.length == 0:
            await send({"type": "http.response.body", "body": b""})
            return
        async with anyio.create_task_group() as group:

            async def watch() -> None:
                await _wait_for_disconnect(receive)
                group.cancel_scope.cancel()

            group.start_soon(watch)
            await self._stream(send)
            group.cancel_scope.cancel()

    async def _stream(self, send: Send) -> None:
        remaining = self.length
        async with await anyio.open_file(self.path, "rb") as handle:
            await handle.seek(self.offset)
            while remaining > 0:
                chunk = await handle.read(min(CHUNK_SIZE, remaining))
                if not chunk:
                    break  # the file shrank under us: the client sees a short body
                remaining -= len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": remaining > 0})
        if remaining > 0:
            await send({"type": "http.response.body", "body": b""})


def _range_or_416(request: Request, size: int) -> ByteRange | Response | None:
    try:
        return parse_range(request.headers.get("range"), size)
    except RangeNotSatisfiable:
        return error_response(
            416,
            f"Requested range {request.headers.get('range')!r} not satisfiable for {size} bytes",
            headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"},
        )


def _headers(filename: str, extra: dict[str, str] | None) -> dict[str, str]:
    return {"Accept-Ranges": "bytes", "Content-Disposition": content_disposition(filename), **(extra or {})}


def file_response(
    request: Request,
    path: Path,
    *,
    filename: str,
    media_type: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A 200/206 streaming ``path``, or a 416 JSON error (see the module docstring)."""
    try:
        size = os.stat(path).st_size
    except OSError:
        raise SandboxHTTPError(404, f"the content of {filename} is not available") from None
    media = media_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
    base = _headers(filename, headers)
    wanted = _range_or_416(request, size)
    if isinstance(wanted, Response):
        return wanted
    send_body = request.method != "HEAD"
    if wanted is None:
        return FileStreamResponse(path, 0, size, 200, base, media, send_body)
    base["Content-Range"] = f"bytes {wanted.start}-{wanted.end}/{size}"
    return FileStreamResponse(path, wanted.start, wanted.length, 206, base, media, send_body)


def bytes_response(request: Request, data: bytes, *, filename: str, media_type: str) -> Response:
    """``file_response`` for a few bytes held in memory (placeholders)."""
    base = _headers(filename, None)
    wanted = _range_or_416(request, len(data))
    if isinstance(wanted, Response):
        return wanted
    status = 200
    if wanted is not None:
        base["Content-Range"] = f"bytes {wanted.start}-{wanted.end}/{len(data)}"
        data, status = data[wanted.start : wanted.end + 1], 206
    if request.method == "HEAD":
        base["Content-Length"] = str(len(data))
        return Response(b"", status_code=status, headers=base, media_type=media_type)
    return Response(data, status_code=status, headers=base, media_type=media_type)
