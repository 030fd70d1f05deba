"""Preservica's S3-compatible upload endpoint, ``/api/s3/buckets`` (path-style), for boto3.

Buckets (per tenant of the presented token; any other name is ``NoSuchBucket``):

- ``{tenant}.package.upload``: a completed PutObject or CompleteMultipartUpload starts an ingest of the
  object (see ``ingest``) and answers with the header ``Preservica-Progress-Token``. The object is listed
  (HEAD, GET, ListObjects) until its ingest has finished, then removed, as Preservica does.
- ``com.preservica.{tenant}.upload``: an emulated source location for the "Ingest OPEX (Incremental)"
  workflow. Objects stay until deleted; nothing is ingested on upload.

Operations: ListBuckets, HeadBucket, ListObjects (v1/v2, ``prefix``, ``max-keys``), HeadObject,
GetObject, PutObject, DeleteObject, CreateMultipartUpload (``POST ?uploads``), UploadPart
(``PUT ?partNumber&uploadId``), ListParts (``GET ?uploadId``), CompleteMultipartUpload
(``POST ?uploadId``), AbortMultipartUpload (``DELETE ?uploadId``). Anything else is ``NotImplemented``.

Credentials: the Preservica token as the SigV4 access key (or the ``Preservica-Access-Token`` header);
signatures are not checked. Missing -> 403 ``AccessDenied``; expired -> 403 ``ExpiredToken``; unknown
or revoked -> 403 ``InvalidAccessKeyId``.

Bodies are streamed to disk in 1 MiB writes off the event loop; ``aws-chunked`` bodies are decoded.
Checked: ``Content-Length`` / ``x-amz-decoded-content-length`` (``IncompleteBody``), a hex
``x-amz-content-sha256`` (``XAmzContentSHA256Mismatch``), ``Content-MD5`` (``BadDigest``). Multipart
follows S3's rules: part numbers 1-10,000, ascending parts with matching ETags on completion, every part
but the last at least 5 MiB (``EntityTooSmall``). ETags: MD5 of the bytes; multipart ``md5(md5s)-N``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from xml.etree import ElementTree as ET

import anyio
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import iterate_in_threadpool
from starlette.requests import ClientDisconnect

from .ingest import IngestService
from .ingest_jobs import package_bucket, source_bucket
from .s3_store import MAX_PART_NUMBER, BodyWriter, Part, StoredObject
from .s3_wire import (
    AwsChunkedDecoder,
    S3Error,
    access_key,
    error_response,
    http_date,
    is_aws_chunked,
    iso8601,
    xml_response,
    xml_text,
)
from .security import HEADER_TOKEN
from .state import SandboxState
from .tokens import AuthenticatedSession, TokenRejected

BASE = "/api/s3/buckets"
PROGRESS_HEADER = "Preservica-Progress-Token"
WRITE_SIZE = 1 << 20
MAX_XML_BODY = 1 << 20
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE"]

router = APIRouter(tags=["s3 upload"])

Handler = Callable[[], Awaitable[Response]]


def _state(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


def _service(request: Request) -> IngestService:
    return _state(request).ingest


def _authenticate(request: Request) -> AuthenticatedSession:
    key = access_key(request.headers, request.query_params, HEADER_TOKEN)
    if not key:
        raise S3Error(403, "AccessDenied", "Anonymous access is forbidden: use the Preservica token as access key")
    try:
        return _state(request).authenticate_token(key)
    except TokenRejected as exc:
        if "expired" in str(exc).lower():
            raise S3Error(403, "ExpiredToken", "The provided token has expired.") from None
        raise S3Error(
            403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."
        ) from None


def _check_bucket(session: AuthenticatedSession, bucket: str) -> None:
    if bucket not in (package_bucket(session.tenant), source_bucket(session.tenant)):
        raise S3Error(404, "NoSuchBucket", "The specified bucket does not exist", BucketName=bucket)


async def _answer(request: Request, resource: str, handler: Handler) -> Response:
    try:
        return await handler()
    except S3Error as error:
        response = error_response(error, resource, head=request.method == "HEAD")
        if request.method in ("PUT", "POST"):
            # The body may be unread (boto3 sends "Expect: 100-continue" and then no body): close the
            # connection, or its next request would be read as this one's body.
            response.headers["Connection"] = "close"
        return response


def _metadata(request: Request) -> dict[str, str]:
    return {
        name[len("x-amz-meta-") :].lower(): value
        for name, value in request.headers.items()
        if name.lower().startswith("x-amz-meta-")
    }


def _object_headers(obj: StoredObject) -> dict[str, str]:
    headers = {
        "ETag": f'"{obj.etag}"',
        "Last-Modified": http_date(obj.last_modified),
        "Content-Type": obj.content_type,
        "Accept-Ranges": "bytes",
    }
    headers.update({f"x-amz-meta-{k}": v for k, v in obj.metadata.items()})
    return headers


# --------------------------------------------------------------------------- bodies
async def _receive(request: Request, service: IngestService) -> BodyWriter:
    """Stream the request body to a new file of the store, decoding ``aws-chunked``; check its length/digests."""
    headers = request.headers
    decoder = AwsChunkedDecoder() if is_aws_chunked(headers) else None
    content_sha = headers.get("x-amz-content-sha256", "").lower()
    declared_text = headers.get("x-amz-decoded-content-length") if decoder else headers.get("content-length")
    path = service.store.new_path(".part")
    writer = await anyio.to_thread.run_sync(BodyWriter, path, bool(_HEX64.match(content_sha)))
    pending = bytearray()
    try:
        async for piece in request.stream():
            if not piece:
                continue
            if decoder is None:
                pending += piece
            else:
                for data in decoder.feed(piece):
                    pending += data
            if len(pending) >= WRITE_SIZE:
                chunk = bytes(pending)
                pending.clear()
                await anyio.to_thread.run_sync(writer.write, chunk)
        if decoder is not None:
            decoder.finish()
        if pending:
            await anyio.to_thread.run_sync(writer.write, bytes(pending))
        await anyio.to_thread.run_sync(writer.close)
    except ClientDisconnect:
        writer.discard()
        raise S3Error(400, "IncompleteBody", "The client closed the connection before the body was complete.") from None
    except BaseException:
        writer.discard()
        raise
    try:
        if declared_text is not None and int(declared_text) != writer.size:
            raise S3Error(
                400,
                "IncompleteBody",
                f"You did not provide the number of bytes specified by the Content-Length HTTP header "
                f"({declared_text} declared, {writer.size} received).",
            )
        sha256 = writer.sha256
        if sha256 is not None and sha256 != content_sha:
            raise S3Error(
                400,
                "XAmzContentSHA256Mismatch",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
                ClientComputedContentSHA256=content_sha,
                S3ComputedContentSHA256=sha256,
            )
        content_md5 = headers.get("content-md5")
        if content_md5:
            try:
                wanted = base64.b64decode(content_md5, validate=True)
            except ValueError:
                raise S3Error(400, "InvalidDigest", "The Content-MD5 you specified was invalid.") from None
            if wanted != writer.md5_digest:
                raise S3Error(400, "BadDigest", "The Content-MD5 you specified did not match what we received.")
    except (S3Error, ValueError) as exc:
        writer.discard()
        if isinstance(exc, S3Error):
            raise
        raise S3Error(400, "InvalidArgument", "Content-Length is not a number") from None
    return writer


async def _xml_body(request: Request) -> ET.Element:
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > MAX_XML_BODY:
            raise S3Error(400, "MalformedXML", "The XML body is too large.")
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise S3Error(400, "MalformedXML", "The XML you provided must not declare a DOCTYPE.")
    try:
        return ET.fromstring(bytes(body))
    except ET.ParseError:
        raise S3Error(
            400, "MalformedXML", "The XML you provided was not well-formed or did not validate against our schema."
        ) from None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


# --------------------------------------------------------------------------- service
@router.get(BASE)
@router.get(BASE + "/")
async def list_buckets(request: Request) -> Response:
    async def handle() -> Response:
        session = _authenticate(request)
        owner = f"<Owner>{xml_text('ID', session.user.name)}{xml_text('DisplayName', session.user.name)}</Owner>"
        created = iso8601(session.token.issued_at)
        buckets = "".join(
            f"<Bucket>{xml_text('Name', name)}{xml_text('CreationDate', created)}</Bucket>"
            for name in (package_bucket(session.tenant), source_bucket(session.tenant))
        )
        return xml_response("ListAllMyBucketsResult", f"{owner}<Buckets>{buckets}</Buckets>")

    return await _answer(request, "/", handle)


# --------------------------------------------------------------------------- buckets
@router.api_route(BASE + "/{bucket}", methods=METHODS)
async def bucket_operation(bucket: str, request: Request) -> Response:
    return await _answer(request, f"/{bucket}", lambda: _bucket(request, bucket))


async def _bucket(request: Request, bucket: str) -> Response:
    session = _authenticate(request)
    _check_bucket(session, bucket)
    if request.method == "HEAD":
        return Response(status_code=200, headers={"x-amz-bucket-region": "us-east-1"})
    if request.method != "GET" or "uploads" in request.query_params or "location" in request.query_params:
        if request.method == "GET" and "location" in request.query_params:
            return xml_response("LocationConstraint", "")
        raise S3Error(501, "NotImplemented", "This bucket operation is not implemented by the Preservica sandbox.")
    query = request.query_params
    prefix = query.get("prefix", "")
    try:
        max_keys = max(0, min(1000, int(query.get("max-keys", "1000"))))
    except ValueError:
        raise S3Error(400, "InvalidArgument", "max-keys must be an integer") from None
    after = query.get("continuation-token") or query.get("start-after") or query.get("marker") or ""
    found = [o for o in _service(request).store.objects(bucket, prefix) if o.key > after]
    page, truncated = found[:max_keys], len(found) > max_keys
    contents = "".join(
        "<Contents>"
        + xml_text("Key", o.key)
        + xml_text("LastModified", iso8601(o.last_modified))
        + xml_text("ETag", f'"{o.etag}"')
        + xml_text("Size", o.size)
        + xml_text("StorageClass", "STANDARD")
        + "</Contents>"
        for o in page
    )
    body = xml_text("Name", bucket) + xml_text("Prefix", prefix) + xml_text("MaxKeys", max_keys)
    body += xml_text("IsTruncated", "true" if truncated else "false")
    if query.get("list-type") == "2":
        body += xml_text("KeyCount", len(page))
        if truncated and page:
            body += xml_text("NextContinuationToken", page[-1].key)
    elif truncated and page:
        body += xml_text("NextMarker", page[-1].key)
    return xml_response("ListBucketResult", body + contents)


# --------------------------------------------------------------------------- objects
@router.api_route(BASE + "/{bucket}/{key:path}", methods=METHODS)
async def object_operation(bucket: str, key: str, request: Request) -> Response:
    if not key:
        return await bucket_operation(bucket, request)
    return await _answer(request, f"/{bucket}/{key}", lambda: _object(request, bucket, key))


async def _object(request: Request, bucket: str, key: str) -> Response:
    session = _authenticate(request)
    _check_bucket(session, bucket)
    query = request.query_params
    method = request.method
    if "x-amz-copy-source" in request.headers:
        raise S3Error(501, "NotImplemented", "Copying objects is not implemented by the Preservica sandbox.")
    if method == "POST" and "uploads" in query:
        return _create_multipart(request, session, bucket, key)
    if "uploadId" in query:
        upload_id = query["uploadId"]
        if method == "PUT":
            return await _upload_part(request, bucket, key, upload_id)
        if method == "POST":
            return await _complete_multipart(request, session, bucket, key, upload_id)
        if method == "DELETE":
            service = _service(request)
            service.store.abort(service.store.upload(upload_id, bucket, key))
            return Response(status_code=204)
        if method == "GET":
            return _list_parts(request, bucket, key, upload_id)
    if method == "PUT":
        return await _put_object(request, session, bucket, key)
    if method in ("GET", "HEAD"):
        return _get_object(request, bucket, key)
    if method == "DELETE":
        store = _service(request).store
        obj = store.get(bucket, key)
        if obj is not None:
            store.delete(bucket, key, keep_files=obj.progress_token is not None)
        return Response(status_code=204)
    raise S3Error(501, "NotImplemented", "This object operation is not implemented by the Preservica sandbox.")


def _missing(key: str) -> S3Error:
    return S3Error(404, "NoSuchKey", "The specified key does not exist.", Key=key)


def _get_object(request: Request, bucket: str, key: str) -> Response:
    obj = _service(request).store.get(bucket, key)
    if obj is None:
        raise _missing(key)
    headers = _object_headers(obj)
    headers["Content-Length"] = str(obj.size)
    if request.method == "HEAD":
        return Response(status_code=200, headers=headers)

    def chunks() -> Any:
        with obj.open() as handle:
            while chunk := handle.read(1 << 20):
                yield chunk

    async def body() -> AsyncIterator[bytes]:
        async for chunk in iterate_in_threadpool(chunks()):
            yield chunk

    return StreamingResponse(body(), headers=headers, media_type=obj.content_type)


async def _put_object(request: Request, session: AuthenticatedSession, bucket: str, key: str) -> Response:
    service = _service(request)
    writer = await _receive(request, service)
    obj = StoredObject(
        bucket=bucket,
        key=key,
        files=[writer.path],
        size=writer.size,
        etag=writer.md5,
        metadata=_metadata(request),
        content_type=request.headers.get("content-type", "binary/octet-stream"),
    )
    headers = {"ETag": f'"{obj.etag}"', **_store_and_submit(service, session, obj)}
    return Response(status_code=200, headers=headers)


def _store_and_submit(service: IngestService, session: AuthenticatedSession, obj: StoredObject) -> dict[str, str]:
    """Keep the object; in the package bucket start its ingest and return the progress-token header."""
    previous = service.store.put(obj)
    if previous is not None and previous.progress_token is None:  # an ingest removes its own object's files
        service.store.remove_files(previous)
    if obj.bucket != package_bucket(session.tenant):
        return {}
    job = service.submit_upload(obj, session.user.name, session.tenant)
    return {PROGRESS_HEADER: job.token}


def _create_multipart(request: Request, session: AuthenticatedSession, bucket: str, key: str) -> Response:
    upload = _service(request).store.create_upload(
        bucket,
        key,
        _metadata(request),
        request.headers.get("content-type", "binary/octet-stream"),
        session.user.name,
    )
    body = xml_text("Bucket", bucket) + xml_text("Key", key) + xml_text("UploadId", upload.upload_id)
    return xml_response("InitiateMultipartUploadResult", body)


async def _upload_part(request: Request, bucket: str, key: str, upload_id: str) -> Response:
    service = _service(request)
    upload = service.store.upload(upload_id, bucket, key)
    try:
        number = int(request.query_params.get("partNumber", ""))
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_PART_NUMBER:
        raise S3Error(400, "InvalidArgument", f"Part number must be an integer between 1 and {MAX_PART_NUMBER}")
    writer = await _receive(request, service)
    final = service.store.part_path(upload, number)
    await anyio.to_thread.run_sync(writer.path.rename, final)
    service.store.add_part(upload, Part(number, final, writer.size, writer.md5, service.clock()))
    return Response(status_code=200, headers={"ETag": f'"{writer.md5}"'})


def _list_parts(request: Request, bucket: str, key: str, upload_id: str) -> Response:
    upload = _service(request).store.upload(upload_id, bucket, key)
    parts = "".join(
        "<Part>"
        + xml_text("PartNumber", p.number)
        + xml_text("LastModified", iso8601(p.last_modified))
        + xml_text("ETag", f'"{p.etag}"')
        + xml_text("Size", p.size)
        + "</Part>"
        for p in sorted(upload.parts.values(), key=lambda p: p.number)
    )
    body = (
        xml_text("Bucket", bucket)
        + xml_text("Key", key)
        + xml_text("UploadId", upload_id)
        + xml_text("StorageClass", "STANDARD")
        + xml_text("IsTruncated", "false")
        + parts
    )
    return xml_response("ListPartsResult", body)


async def _complete_multipart(
    request: Request, session: AuthenticatedSession, bucket: str, key: str, upload_id: str
) -> Response:
    service = _service(request)
    upload = service.store.upload(upload_id, bucket, key)
    root = await _xml_body(request)
    wanted: list[tuple[int, str]] = []
    for part in root.iter():
        if _local(part.tag) != "Part":
            continue
        number_text = etag = None
        for child in part:
            if _local(child.tag) == "PartNumber":
                number_text = (child.text or "").strip()
            elif _local(child.tag) == "ETag":
                etag = (child.text or "").strip()
        if not number_text or etag is None:
            raise S3Error(400, "MalformedXML", "Each Part needs a PartNumber and an ETag.")
        try:
            wanted.append((int(number_text), etag))
        except ValueError:
            raise S3Error(400, "MalformedXML", f"PartNumber {number_text!r} is not a number") from None
    obj = service.store.complete(upload, wanted)
    headers = _store_and_submit(service, session, obj)
    location = f"{str(request.base_url).rstrip('/')}{BASE}/{bucket}/{key}"
    body = (
        xml_text("Location", location)
        + xml_text("Bucket", bucket)
        + xml_text("Key", key)
        + xml_text("ETag", f'"{obj.etag}"')
    )
    return xml_response("CompleteMultipartUploadResult", body, headers=headers)
