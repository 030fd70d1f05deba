"""S3 wire details for the S3-compatible upload endpoint: errors, XML, credentials, aws-chunked bodies.

- ``S3Error``: answered as S3's XML error (``<Error><Code>..</Code><Message>..</Message>..</Error>``);
  HEAD requests get the status only, as S3 does.
- ``access_key``: the Preservica token that a request presents, from a SigV4 ``Authorization`` header
  (``AWS4-HMAC-SHA256 Credential=<token>/<date>/<region>/s3/aws4_request, ...``), a presigned URL's
  ``X-Amz-Credential`` or the ``Preservica-Access-Token`` header. Signatures are not checked (the
  secret key is ``NOT_USED``).
- ``AwsChunkedDecoder``: the ``aws-chunked`` content encoding that SDKs use for streaming uploads
  (``STREAMING-AWS4-HMAC-SHA256-PAYLOAD``, ``STREAMING-UNSIGNED-PAYLOAD-TRAILER`` ...): chunks of
  ``<hex size>[;chunk-signature=..]\\r\\n<data>\\r\\n``, a zero-size chunk, then optional trailers
  (``x-amz-checksum-crc32:..``) and an empty line. Fed incrementally, it never buffers more than one
  network read.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from email.utils import formatdate
from xml.sax.saxutils import escape

from fastapi import Response

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
STREAMING_PREFIX = "STREAMING-"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
MAX_CHUNK_HEADER = 4096


class S3Error(Exception):
    """An S3 error response: ``status``, ``code`` (``NoSuchBucket`` ...) and a human message."""

    def __init__(self, status: int, code: str, message: str, **fields: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields


def request_id() -> str:
    return uuid.uuid4().hex[:16].upper()


def xml_text(tag: str, value: object) -> str:
    return f"<{tag}>{escape(str(value))}</{tag}>"


def xml_document(root: str, body: str) -> str:
    return f'{XML_DECLARATION}<{root} xmlns="{S3_NS}">{body}</{root}>'


def xml_response(root: str, body: str, status_code: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    all_headers = {"x-amz-request-id": request_id(), **(headers or {})}
    return Response(
        xml_document(root, body), status_code=status_code, media_type="application/xml", headers=all_headers
    )


def error_response(error: S3Error, resource: str, head: bool = False) -> Response:
    rid = request_id()
    headers = {"x-amz-request-id": rid}
    if head:  # S3 answers HEAD errors without a body; botocore then uses the status as the code
        return Response(status_code=error.status, headers=headers)
    extra = "".join(xml_text(name, value) for name, value in error.fields.items())
    body = (
        f"{XML_DECLARATION}<Error>{xml_text('Code', error.code)}{xml_text('Message', error.message)}{extra}"
        f"{xml_text('Resource', resource)}{xml_text('RequestId', rid)}</Error>"
    )
    return Response(body, status_code=error.status, media_type="application/xml", headers=headers)


def iso8601(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def http_date(epoch: float) -> str:
    return formatdate(epoch, usegmt=True)


def access_key(headers: Mapping[str, str], query: Mapping[str, str], token_header: str) -> str | None:
    """The Preservica token a request presents (see the module docstring), or ``None``."""
    authorization = headers.get("authorization", "")
    scheme, _, params = authorization.partition(" ")
    if scheme == "AWS4-HMAC-SHA256":
        for part in params.split(","):
            name, _, value = part.strip().partition("=")
            if name == "Credential" and value:
                return value.split("/", 1)[0].strip() or None
        return None
    if scheme == "AWS" and params:  # SigV2 "AWS <key>:<signature>": Preservica refuses it, we name the key
        return None
    credential = query.get("X-Amz-Credential")
    if credential:
        return credential.split("/", 1)[0].strip() or None
    token = headers.get(token_header.lower())
    return token.strip() if token else None


def is_aws_chunked(headers: Mapping[str, str]) -> bool:
    encodings = [e.strip().lower() for e in headers.get("content-encoding", "").split(",")]
    return "aws-chunked" in encodings or headers.get("x-amz-content-sha256", "").startswith(STREAMING_PREFIX)


class AwsChunkedDecoder:
    """Incremental decoder of an ``aws-chunked`` body; ``feed`` returns the payload bytes it could decode."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._state = "size"  # size -> data -> crlf -> size ... -> trailers -> done
        self._remaining = 0
        self.trailers: dict[str, str] = {}
        self.chunks = 0

    @property
    def done(self) -> bool:
        return self._state == "done"

    def _line(self) -> bytes | None:
        end = self._buffer.find(b"\r\n")
        if end < 0:
            if len(self._buffer) > MAX_CHUNK_HEADER:
                raise S3Error(400, "IncompleteBody", "aws-chunked body: chunk header too long")
            return None
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 2]
        return line

    def feed(self, data: bytes) -> list[bytes]:
        if self._state == "done":
            if data.strip(b"\r\n"):
                raise S3Error(400, "IncompleteBody", "aws-chunked body: data after the final chunk")
            return []
        self._buffer += data
        out: list[bytes] = []
        while True:
            if self._state == "size":
                line = self._line()
                if line is None:
                    break
                size_text = line.split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise S3Error(400, "IncompleteBody", f"aws-chunked body: bad chunk size {size_text!r}") from None
                self.chunks += 1
                if size == 0:
                    self._state = "trailers"
                else:
                    self._remaining = size
                    self._state = "data"
            elif self._state == "data":
                if not self._buffer:
                    break
                take = min(self._remaining, len(self._buffer))
                out.append(bytes(self._buffer[:take]))
                del self._buffer[:take]
                self._remaining -= take
                if self._remaining == 0:
                    self._state = "crlf"
            elif self._state == "crlf":
                if len(self._buffer) < 2:
                    break
                if self._buffer[:2] != b"\r\n":
                    raise S3Error(400, "IncompleteBody", "aws-chunked body: chunk data longer than its size")
                del self._buffer[:2]
                self._state = "size"
            elif self._state == "trailers":
                line = self._line()
                if line is None:
                    break
                if not line:
                    self._state = "done"
                    break
                name, _, value = line.decode("latin-1").partition(":")
                self.trailers[name.strip().lower()] = value.strip()
            else:
                break
        return out

    def finish(self) -> None:
        """Check the body ended where the encoding says it does (a missing final empty line is tolerated)."""
        if self._state == "trailers" and not self._buffer:
            self._state = "done"
        if self._state != "done":
            raise S3Error(400, "IncompleteBody", "aws-chunked body ended before its final chunk")
