"""The S3-compatible upload endpoint with boto3: PutObject, multipart, aws-chunked, errors, HEAD/DELETE."""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from preservica_sandbox import SandboxServer, s3_api
from preservica_sandbox.repository import Repository
from preservica_sandbox.s3_store import StoredObject
from preservica_sandbox.s3_wire import AwsChunkedDecoder, S3Error

from tests.support.ingest_helpers import BUCKET, SOURCE_BUCKET, OpexPackage, s3_client, wait_for
from tests.support.tls import self_signed, serve_tls

from .conftest import post_faults, stats

MiB = 1024 * 1024


@pytest.fixture
def fast(sandbox: SandboxServer) -> SandboxServer:
    sandbox.state.update_config({"ingest_seconds": 0.1})
    return sandbox


@pytest.fixture
def parent(repository: Repository) -> str:
    return repository.add_folder("Uploads").ref


def _token(auth: dict[str, str]) -> str:
    return auth["Preservica-Access-Token"]


def _code(error: ClientError) -> tuple[str, int]:
    return error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"]


# --------------------------------------------------------------------------- aws-chunked decoding (no network)
def _chunked(data: bytes, sizes: list[int], signed: bool = True, trailer: str | None = None) -> bytes:
    ext = ";chunk-signature=" + "0" * 64 if signed else ""
    out, offset = b"", 0
    for size in sizes:
        piece = data[offset : offset + size]
        offset += size
        out += f"{len(piece):x}{ext}\r\n".encode() + piece + b"\r\n"
    out += f"0{ext}\r\n".encode()
    if trailer:
        out += trailer.encode() + b"\r\n"
    return out + b"\r\n"


@pytest.mark.parametrize("signed,trailer", [(True, None), (False, "x-amz-checksum-crc32:AAAAAA=="), (True, None)])
def test_aws_chunked_decoder_survives_any_split(signed: bool, trailer: str | None) -> None:
    data = os.urandom(3000)
    body = _chunked(data, [1000, 1500, 500], signed, trailer)
    for step in (1, 7, 64, len(body)):
        decoder = AwsChunkedDecoder()
        out = b"".join(b"".join(decoder.feed(body[i : i + step])) for i in range(0, len(body), step))
        decoder.finish()
        assert out == data and decoder.chunks == 4
        assert decoder.trailers == ({"x-amz-checksum-crc32": "AAAAAA=="} if trailer else {})


def test_aws_chunked_decoder_rejects_bad_framing() -> None:
    with pytest.raises(S3Error, match="chunk size"):
        AwsChunkedDecoder().feed(b"zz;chunk-signature=00\r\nabc")
    with pytest.raises(S3Error, match="longer than its size"):
        AwsChunkedDecoder().feed(b"3\r\nabcdef\r\n")
    truncated = AwsChunkedDecoder()
    truncated.feed(b"a\r\n01234")
    with pytest.raises(S3Error, match="before its final chunk"):
        truncated.finish()


def test_multipart_object_reads_as_one_seekable_stream(tmp_path: Path) -> None:
    chunks = [os.urandom(n) for n in (1000, 1, 4096, 333)]
    files = []
    for number, chunk in enumerate(chunks):
        files.append(tmp_path / f"part-{number}")
        files[-1].write_bytes(chunk)
    whole = b"".join(chunks)
    obj = StoredObject("b", "k", files, len(whole), "etag")
    with obj.open() as stream:
        assert stream.read() == whole
        for offset, size in ((0, 10), (995, 10), (1000, 1), (1001, 5000), (5400, 100), (len(whole) - 3, 50)):
            stream.seek(offset)
            assert stream.read(size) == whole[offset : offset + size]
        stream.seek(-7, os.SEEK_END)
        assert stream.tell() == len(whole) - 7 and stream.read() == whole[-7:]


# --------------------------------------------------------------------------- boto3 over http
def test_list_buckets_and_path_style_urls(fast: SandboxServer, auth: dict[str, str]) -> None:
    client = s3_client(fast.base_url, _token(auth))
    names = [b["Name"] for b in client.list_buckets()["Buckets"]]
    assert names == [BUCKET, SOURCE_BUCKET]
    client.put_object(Bucket=SOURCE_BUCKET, Key="opex/c/a b.txt", Body=b"hello")
    counted = stats(fast.base_url)["requests"]
    assert counted["PUT /api/s3/buckets/{bucket}/{key}"] == 1  # path-style under the endpoint's path
    head = client.head_object(Bucket=SOURCE_BUCKET, Key="opex/c/a b.txt")
    assert head["ContentLength"] == 5 and head["ETag"] == f'"{hashlib.md5(b"hello").hexdigest()}"'
    listed = client.list_objects_v2(Bucket=SOURCE_BUCKET, Prefix="opex/")
    assert [o["Key"] for o in listed["Contents"]] == ["opex/c/a b.txt"]
    assert client.get_object(Bucket=SOURCE_BUCKET, Key="opex/c/a b.txt")["Body"].read() == b"hello"
    client.delete_object(Bucket=SOURCE_BUCKET, Key="opex/c/a b.txt")
    with pytest.raises(ClientError) as missing:
        client.head_object(Bucket=SOURCE_BUCKET, Key="opex/c/a b.txt")
    assert _code(missing.value) == ("404", 404)


def test_put_object_returns_progress_token_and_object_goes_after_ingest(
    fast: SandboxServer, auth: dict[str, str], parent: str
) -> None:
    client = s3_client(fast.base_url, _token(auth))
    data = OpexPackage().add("a.txt", b"alpha").zip()
    response = client.put_object(Bucket=BUCKET, Key="p.zip", Body=data, Metadata={"structuralobjectreference": parent})
    token = response["ResponseMetadata"]["HTTPHeaders"]["preservica-progress-token"]
    assert response["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    head = client.head_object(Bucket=BUCKET, Key="p.zip")  # listed while the ingest runs
    assert head["Metadata"] == {"structuralobjectreference": parent}
    assert wait_for(fast.base_url, token, auth).status == "COMPLETED"
    with pytest.raises(ClientError) as gone:
        client.head_object(Bucket=BUCKET, Key="p.zip")
    assert _code(gone.value) == ("404", 404)


def test_multipart_upload_with_transfer_config(fast: SandboxServer, auth: dict[str, str], parent: str) -> None:
    big = os.urandom(16 * MiB)
    package = OpexPackage().add("big.bin", big).zip()
    client = s3_client(fast.base_url, _token(auth))
    captured: dict[str, str] = {}

    def remember(http_response: Any = None, **_: Any) -> None:
        captured["token"] = http_response.headers["Preservica-Progress-Token"]
        captured["etag"] = http_response.text

    client.meta.events.register("after-call.s3.CompleteMultipartUpload", remember)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "package.zip"
        path.write_bytes(package)
        config = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, max_concurrency=4)
        client.upload_file(
            str(path), BUCKET, "big.zip", ExtraArgs={"Metadata": {"structuralobjectreference": parent}}, Config=config
        )
    parts = [package[i : i + 5 * MiB] for i in range(0, len(package), 5 * MiB)]
    expected = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + f"-{len(parts)}"
    assert len(parts) == 4 and f'<ETag>"{expected}"</ETag>' in captured["etag"]
    counted = stats(fast.base_url)["requests"]
    assert counted["PUT /api/s3/buckets/{bucket}/{key}"] == 4 and counted["POST /api/s3/buckets/{bucket}/{key}"] == 2
    assert wait_for(fast.base_url, captured["token"], auth).status == "COMPLETED"
    asset = next(e for e in fast.state.repository.entities(["IO"]) if e.title == "big.bin")
    content = fast.state.repository.get(asset.representations[0].content_objects[0])
    assert content is not None
    bitstream = content.generations[0].bitstreams[0]
    assert bitstream.size == len(big) and bitstream.fixities["SHA256"] == hashlib.sha256(big).hexdigest()


def test_multipart_rules_abort_and_list_parts(fast: SandboxServer, auth: dict[str, str]) -> None:
    client = s3_client(fast.base_url, _token(auth))
    upload = client.create_multipart_upload(Bucket=SOURCE_BUCKET, Key="m.bin")["UploadId"]
    etags = [
        client.upload_part(Bucket=SOURCE_BUCKET, Key="m.bin", UploadId=upload, PartNumber=n, Body=b"x" * 10)["ETag"]
        for n in (1, 2)
    ]
    listed = client.list_parts(Bucket=SOURCE_BUCKET, Key="m.bin", UploadId=upload)["Parts"]
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in listed] == [(1, 10, etags[0]), (2, 10, etags[1])]
    parts = [{"PartNumber": n, "ETag": e} for n, e in zip((1, 2), etags, strict=True)]
    with pytest.raises(ClientError) as small:
        client.complete_multipart_upload(
            Bucket=SOURCE_BUCKET, Key="m.bin", UploadId=upload, MultipartUpload={"Parts": parts}
        )
    assert _code(small.value) == ("EntityTooSmall", 400)
    with pytest.raises(ClientError) as order:
        client.complete_multipart_upload(
            Bucket=SOURCE_BUCKET, Key="m.bin", UploadId=upload, MultipartUpload={"Parts": parts[::-1]}
        )
    assert _code(order.value) == ("InvalidPartOrder", 400)
    client.abort_multipart_upload(Bucket=SOURCE_BUCKET, Key="m.bin", UploadId=upload)
    with pytest.raises(ClientError) as gone:
        client.list_parts(Bucket=SOURCE_BUCKET, Key="m.bin", UploadId=upload)
    assert _code(gone.value) == ("NoSuchUpload", 404)


def test_expired_and_unknown_tokens_are_refused(fast: SandboxServer, auth: dict[str, str]) -> None:
    client = s3_client(fast.base_url, _token(auth))
    post_faults(fast.base_url, {"kind": "expire_tokens"})
    with pytest.raises(ClientError) as expired:
        client.put_object(Bucket=BUCKET, Key="x.zip", Body=b"data")
    assert _code(expired.value) == ("ExpiredToken", 403)
    with pytest.raises(ClientError) as unknown:
        s3_client(fast.base_url, "not-a-token").list_buckets()
    assert _code(unknown.value) == ("InvalidAccessKeyId", 403)
    anonymous = requests.get(f"{fast.base_url}/api/s3/buckets", timeout=10)
    assert anonymous.status_code == 403 and "<Code>AccessDenied</Code>" in anonymous.text
    assert fast.state.ingest.jobs() == []


def test_other_buckets_do_not_exist(fast: SandboxServer, auth: dict[str, str]) -> None:
    client = s3_client(fast.base_url, _token(auth))
    for bucket in ("other.package.upload", "other-tenant.package.upload"):
        with pytest.raises(ClientError) as error:
            client.put_object(Bucket=bucket, Key="x.zip", Body=b"data")
        assert _code(error.value) == ("NoSuchBucket", 404)
        assert error.value.response["Error"]["BucketName"] == bucket


def test_header_token_and_content_checks(fast: SandboxServer, auth: dict[str, str]) -> None:
    url = f"{fast.base_url}/api/s3/buckets/{SOURCE_BUCKET}/plain.txt"
    good = requests.put(url, data=b"abc", headers={**auth, "x-amz-content-sha256": hashlib.sha256(b"abc").hexdigest()})
    assert good.status_code == 200 and good.headers["ETag"] == f'"{hashlib.md5(b"abc").hexdigest()}"'
    bad_sha = requests.put(url, data=b"abc", headers={**auth, "x-amz-content-sha256": "0" * 64}, timeout=10)
    assert bad_sha.status_code == 400 and "<Code>XAmzContentSHA256Mismatch</Code>" in bad_sha.text
    bad_md5 = requests.put(url, data=b"abc", headers={**auth, "Content-MD5": "AAAAAAAAAAAAAAAAAAAAAA=="}, timeout=10)
    assert bad_md5.status_code == 400 and "<Code>BadDigest</Code>" in bad_md5.text


def test_signed_aws_chunked_put_is_decoded(fast: SandboxServer, auth: dict[str, str], parent: str) -> None:
    """``STREAMING-AWS4-HMAC-SHA256-PAYLOAD`` as the Java/JS SDKs send it, token in the SigV4 credential."""
    data = OpexPackage().add("chunked.txt", os.urandom(70_000)).zip()
    body = _chunked(data, [65536, 65536, len(data)])
    headers = {
        "Authorization": f"AWS4-HMAC-SHA256 Credential={_token(auth)}/20250101/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=" + "0" * 64,
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(data)),
        "x-amz-meta-structuralobjectreference": parent,
    }
    response = requests.put(f"{fast.base_url}/api/s3/buckets/{BUCKET}/chunked.zip", data=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert wait_for(fast.base_url, response.headers["Preservica-Progress-Token"], auth).status == "COMPLETED"
    short = dict(headers, **{"x-amz-decoded-content-length": str(len(data) + 1)})
    refused = requests.put(f"{fast.base_url}/api/s3/buckets/{BUCKET}/short.zip", data=body, headers=short)
    assert refused.status_code == 400 and "<Code>IncompleteBody</Code>" in refused.text


def test_fault_injection_applies_to_s3_routes(fast: SandboxServer, auth: dict[str, str]) -> None:
    """A 503 is answered before the body is read: the connection must close so boto3's retry works."""
    post_faults(fast.base_url, {"kind": "status", "status": 503, "route": "PUT /api/s3/buckets/*", "count": 1})
    client = s3_client(fast.base_url, _token(auth))  # one retry
    client.put_object(Bucket=SOURCE_BUCKET, Key="f.txt", Body=b"x")
    counted = stats(fast.base_url)
    assert counted["faults_fired"] == {"status": 1}
    assert counted["requests"]["PUT /api/s3/buckets/{bucket}/{key}"] == 2
    post_faults(fast.base_url, {"kind": "status", "status": 503, "route": "PUT /api/s3/buckets/*", "count": 2})
    with pytest.raises(ClientError) as error:
        client.put_object(Bucket=SOURCE_BUCKET, Key="g.txt", Body=b"x")
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503


# --------------------------------------------------------------------------- boto3 over https (aws-chunked)
@pytest.fixture(scope="module")
def tls_url(sandbox_server: SandboxServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The session sandbox's state served over HTTPS too: over TLS boto3 stops signing payloads and
    streams them ``aws-chunked`` (with checksums) or ``UNSIGNED-PAYLOAD`` (without)."""
    with serve_tls(sandbox_server.state, *self_signed(tmp_path_factory.mktemp("tls"))) as url:
        yield url


@pytest.mark.parametrize("checksums,chunked", [("when_supported", True), ("when_required", False)])
def test_boto3_over_tls_streams_aws_chunked_multipart(
    fast: SandboxServer,
    auth: dict[str, str],
    parent: str,
    tls_url: str,
    monkeypatch: pytest.MonkeyPatch,
    checksums: str,
    chunked: bool,
) -> None:
    decoders: list[AwsChunkedDecoder] = []

    class Counting(AwsChunkedDecoder):
        def __init__(self) -> None:
            super().__init__()
            decoders.append(self)

    monkeypatch.setattr(s3_api, "AwsChunkedDecoder", Counting)
    payload = os.urandom(11 * MiB)
    package = OpexPackage().add("tls.bin", payload).zip()
    client = s3_client(tls_url, _token(auth), checksums=checksums, verify=False)
    captured: dict[str, str] = {}
    client.meta.events.register(
        "after-call.s3.CompleteMultipartUpload",
        lambda http_response=None, **_: captured.update(token=http_response.headers["Preservica-Progress-Token"]),
    )
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = Path(tmp) / "tls.zip"
        path.write_bytes(package)
        config = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
        client.upload_file(
            str(path), BUCKET, "tls.zip", ExtraArgs={"Metadata": {"structuralobjectreference": parent}}, Config=config
        )
    assert len(decoders) == (3 if chunked else 0)
    if chunked:
        assert all(d.done and "x-amz-checksum-crc32" in d.trailers for d in decoders)
    assert wait_for(fast.base_url, captured["token"], auth).status == "COMPLETED"
    asset = next(e for e in fast.state.repository.entities(["IO"]) if e.title == "tls.bin")
    content = fast.state.repository.get(asset.representations[0].content_objects[0])
    assert content is not None
    assert content.generations[0].bitstreams[0].fixities["SHA256"] == hashlib.sha256(payload).hexdigest()
