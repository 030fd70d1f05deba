"""Upload a package through Preservica's S3-compatible endpoint with boto3.

The access token is the S3 access key, and the only credentials boto3 is given (``client/upload_credentials``:
botocore's public provider chain holding just the token; ``AWS_*`` variables and ``~/.aws`` are never read for
them). boto3 asks our token cache for credentials and refreshes them before they expire, so a multipart upload
longer than a token's life keeps going. The ``Preservica-Progress-Token`` response header of the final
PutObject / CompleteMultipartUpload is captured with a botocore event hook (no monkey-patching of s3transfer).

botocore never follows a ``Location`` (it sends with redirects off and re-signs a region redirect for the
same endpoint), so the token-as-access-key stays on the origin; an answer that redirects elsewhere is
reported as :class:`~airflow_provider_preservica.exceptions.PreservicaRedirectError`, like any other path's.
TLS is checked as on every other path (``http.effective_verify``).
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from airflow_provider_preservica.client.auth.cache import TokenCache
from airflow_provider_preservica.client.http import effective_verify
from airflow_provider_preservica.client.redirects import refuse_off_origin_redirect
from airflow_provider_preservica.client.transfer_progress import ProgressLogger
from airflow_provider_preservica.exceptions import PreservicaAuthError, PreservicaConnectionError, PreservicaError

log = logging.getLogger(__name__)

MiB = 1024 * 1024
PROGRESS_HEADER = "preservica-progress-token"
REFRESH_WHEN_LEFT = 180.0  # seconds: hand boto3 a fresh token before an old one gets this close to expiry


def bucket_for(tenant: str | None) -> str:
    if not tenant:
        raise PreservicaError(
            "uploads go to the tenant's bucket '<tenant>.package.upload': set the Connection extra 'tenant'"
        )
    return f"{tenant.lower()}.package.upload"


def part_size_for(size: int) -> int:
    """Parts big enough to stay far below S3's 10,000-part limit (pyPreservica's steps, 16 MiB floor)."""
    for limit, part in ((48 * 1024, 64), (24 * 1024, 48), (8 * 1024, 32)):
        if size > limit * MiB:
            return part * MiB
    return 16 * MiB


@dataclass(frozen=True)
class UploadResult:
    progress_token: str
    bucket: str
    key: str
    bytes: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.bytes / max(self.seconds, 1e-9)


class PackageUploader:
    """Sends package files to ``{tenant}.package.upload`` on one Preservica server."""

    def __init__(
        self,
        base_url: str,
        tenant: str | None,
        tokens: TokenCache,
        *,
        verify: bool | str = True,
        timeout: float = 120.0,
        max_concurrency: int = 4,
        multipart_threshold: int = 32 * MiB,
        part_size: int | None = None,
        log_interval: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.bucket = bucket_for(tenant)
        self.tokens = tokens
        self.verify = effective_verify(verify)
        self.timeout = timeout
        self.max_concurrency = max_concurrency
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self.log_interval = log_interval

    def _credentials(self) -> dict[str, str]:
        token = self.tokens.get_token()
        if token.expires_at - time.time() < min(REFRESH_WHEN_LEFT, token.lifetime / 2):
            self.tokens.invalidate(token)  # do not hand boto3 a token that may die in the middle of a part
            token = self.tokens.get_token()
        expiry = max(token.expires_at - min(REFRESH_WHEN_LEFT, token.lifetime / 2), time.time() + 1)
        return {
            "access_key": token.value,
            "secret_key": "NOT_USED",
            "token": "",
            "expiry_time": datetime.fromtimestamp(expiry, tz=timezone.utc).isoformat(),
        }

    def _client(self) -> Any:
        import boto3
        from botocore.config import Config

        from airflow_provider_preservica.client.upload_credentials import token_only_session

        botocore_session = token_only_session(self._credentials)  # the token, never AWS_* or ~/.aws
        config = Config(
            s3={"addressing_style": "path"},
            connect_timeout=self.timeout,
            read_timeout=self.timeout,
            retries={"max_attempts": 5, "mode": "standard"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            tcp_keepalive=True,
            max_pool_connections=max(10, self.max_concurrency * 2),
        )
        return boto3.Session(botocore_session=botocore_session).client(
            "s3",
            endpoint_url=f"{self.base_url}/api/s3/buckets",
            region_name="us-east-1",
            verify=self.verify,
            config=config,
        )

    def _refuse_redirect(self, exc: BaseException, key: str) -> None:
        """Raise :class:`PreservicaRedirectError` if the failure was the server redirecting off the origin."""
        current: BaseException | None = exc
        while current is not None:
            response = getattr(current, "response", None)
            metadata = response.get("ResponseMetadata", {}) if isinstance(response, dict) else {}
            status = metadata.get("HTTPStatusCode")
            location = (metadata.get("HTTPHeaders") or {}).get("location")
            if isinstance(status, int) and 300 <= status < 400 and location:
                url = f"{self.base_url}/api/s3/buckets/{self.bucket}/{key}"
                refuse_off_origin_redirect(self.base_url, "PUT", url, location, status)
                return
            current = current.__cause__ or current.__context__

    def upload(self, path: str | os.PathLike[str], parent_ref: str, key: str | None = None) -> UploadResult:
        """Upload ``path`` under folder ``parent_ref``; return the progress token Preservica issued."""
        from boto3.s3.transfer import S3UploadFailedError, TransferConfig
        from botocore.exceptions import BotoCoreError, ClientError

        file = Path(path)
        size = file.stat().st_size
        key = key or f"{uuid.uuid4()}.zip"
        client = self._client()
        captured: dict[str, str] = {}

        def remember_progress_token(http_response: Any = None, **_: Any) -> None:
            value = getattr(http_response, "headers", {}).get("Preservica-Progress-Token")
            if value:
                captured["token"] = value

        for operation in ("PutObject", "CompleteMultipartUpload"):
            client.meta.events.register(f"after-call.s3.{operation}", remember_progress_token)
        transfer = TransferConfig(
            multipart_threshold=self.multipart_threshold,
            multipart_chunksize=self.part_size or part_size_for(size),
            max_concurrency=self.max_concurrency,
            use_threads=self.max_concurrency > 1,
        )
        progress = ProgressLogger(size, f"Uploading {file.name}", self.log_interval)
        started = time.monotonic()
        log.info(
            "Uploading %s (%.1f MiB) to %s/%s under folder %s", file.name, size / MiB, self.bucket, key, parent_ref
        )
        try:
            client.upload_file(
                str(file),
                self.bucket,
                key,
                ExtraArgs={"Metadata": {"structuralobjectreference": parent_ref}},
                Config=transfer,
                Callback=progress,
            )
        except (S3UploadFailedError, ClientError) as exc:
            self._refuse_redirect(exc, key)
            text = str(exc)
            if any(code in text for code in ("ExpiredToken", "InvalidAccessKeyId", "AccessDenied", "403")):
                raise PreservicaAuthError(f"Preservica refused the upload of {file.name}: {text}") from None
            raise PreservicaError(f"upload of {file.name} to {self.bucket} failed: {text}") from None
        except BotoCoreError as exc:
            raise PreservicaConnectionError(f"upload of {file.name} to {self.base_url} failed: {exc}") from None
        seconds = time.monotonic() - started
        if "token" not in captured:
            raise PreservicaError(
                f"Preservica accepted {file.name} as {self.bucket}/{key} but returned no Preservica-Progress-Token; "
                "is an ingest workflow active for this tenant?"
            )
        result = UploadResult(captured["token"], self.bucket, key, size, seconds)
        log.info(
            "Uploaded %.1f MiB in %.1f s (%.1f MiB/s); progress token %s",
            size / MiB,
            seconds,
            result.rate / MiB,
            result.progress_token,
        )
        return result
