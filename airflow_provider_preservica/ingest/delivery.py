"""One delivery, several packages: adopt what an earlier try sent, send the rest, record each as it goes.

The in-flight record (``jobs.InFlightJob``) lists every package Preservica has taken for the batch,
written the moment each upload returns its progress token. A retry (a cleared or retried task, a worker
killed after upload N of M) reads it: while any package is still running, or when all finished well
within this run of the task, every package recorded is adopted as it is and never sent again, and the
files of the packages not yet sent are packaged and sent. When none is running and one failed (or a
cleared re-run finds them finished), the run starts afresh and its skip check finds what did get in.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from airflow_provider_preservica.client.progress import RUNNING, Progress
from airflow_provider_preservica.exceptions import (
    AdoptionUnknown,
    PartlySent,
    PreservicaError,
    ProgressTokenUnknownError,
)
from airflow_provider_preservica.ingest.claims import TargetClaim
from airflow_provider_preservica.ingest.runner import IngestRunner
from airflow_provider_preservica.ingest.sending import BuiltPackage, SendError, SentPackage, send_packages
from airflow_provider_preservica.jobs import InFlightJob, JobRegistry, batch_hash

log = logging.getLogger(__name__)


class ProgressReader(Protocol):
    """Reads a progress token: ``PreservicaHook.progress`` (pass the hook)."""

    def progress(self, token: str) -> Progress: ...


def adopt_packages(preservica: ProgressReader, registry: JobRegistry, report: Any, series: str) -> InFlightJob | None:
    """Adopt the packages the in-flight record of ``report.batch_id`` lists, or ``None`` to start afresh."""
    record = registry.load(report.batch_id)
    if record is None:
        return None
    sent = record.sent_packages()
    seen: list[Progress] = []
    for entry in sent:
        token = str(entry[1])
        try:
            seen.append(preservica.progress(token))
        except ProgressTokenUnknownError:
            log.warning(
                "Preservica no longer knows the earlier ingest %s of this batch; submitting again (files it "
                "ingested are skipped by SourceID)",
                token,
            )
            return None
        except PreservicaError as exc:
            raise AdoptionUnknown(
                f"cannot read the progress of ingest {token}, which an earlier try of this batch started "
                f"({exc}); not uploading again so that nothing is ingested twice: a retry will look again"
            ) from None
    # One package still running: adopt them all, or its files would be sent a second time beside it. None
    # running: adopt only this run's successes; otherwise start afresh, the skip check finds what got in.
    running = any(p.status in RUNNING for p in seen)
    ended = [p for p in seen if not (p.succeeded and record.series == series)]
    if ended and not running:
        log.warning("Earlier ingest %s of this batch ended %s; submitting again", ended[0].token, ended[0].status)
        return None
    rest = "" if record.complete else "; sending the packages it had not sent"
    if len(sent) == 1:
        log.info(
            "Adopting the ingest an earlier try started: progress token %s, %s%s", sent[0][1], seen[0].status, rest
        )
    else:
        log.info(
            "Adopting the %d packages an earlier try sent: progress tokens %s (%s)%s",
            len(sent),
            ", ".join(str(p[1]) for p in sent),
            ", ".join(p.status for p in seen),
            rest,
        )
    for key, token, _first, _last, assets, size, index in sent:
        report.add_package(int(index), str(key), str(token), int(assets or 0), int(size or 0), None)
    report.assets_sent = sum(int(p[4] or 0) for p in sent)
    report.package_bytes = sum(int(p[5] or 0) for p in sent)
    report.adopted = True
    registry.claim(record, series)
    report.state = next((p.status for p in seen if p.status in RUNNING), seen[0].status)
    return record


def send_delivery(
    runner: IngestRunner,
    registry: JobRegistry,
    claim: TargetClaim | None,
    built: list[BuiltPackage],
    adopted: list[list[Any]],
    *,
    parent_ref: str,
    series: str,
    concurrency: int,
    claim_seconds: float,
    wait_finished: Callable[[list[str]], object],
) -> None:
    """Upload ``built`` after the ``adopted`` packages, recording each in the in-flight record and the claim.

    :raises PartlySent: an upload failed after Preservica took some packages (a retry adopts them).
    :raises PreservicaError: an upload failed before Preservica took any package.
    """
    report = runner.report
    prefix = f"{batch_hash(report.batch_id)[:16]}-{uuid.uuid4().hex[:8]}"
    several = len(built) + len(adopted) > 1
    records = [list(p) for p in adopted]

    def upload(package: BuiltPackage) -> SentPackage:
        key = f"{prefix}-p{package.index:03d}.zip" if several else f"{prefix}.zip"
        return runner.upload(package, parent_ref, key)

    def on_sent(sent: SentPackage) -> None:
        records.append(sent.record())
        records.sort(key=lambda r: int(r[6]))
        report.add_package(sent.index, sent.key, sent.progress_token, sent.assets, sent.bytes, sent.seconds)
        if claim is not None:
            claim.submitted([str(r[1]) for r in records], claim_seconds)
        first = records[0]
        registry.save(
            InFlightJob(
                "ingest",
                report.batch_id,
                str(first[1]),
                str(first[0]),
                submitted_at=time.time(),
                assets_sent=sum(int(r[4] or 0) for r in records),
                package_bytes=sum(int(r[5] or 0) for r in records),
                series=series,
                packages=records,
                complete=len(records) == len(adopted) + len(built),
            )
        )

    try:
        send_packages(
            built,
            upload,
            concurrency=concurrency,
            wait_finished=wait_finished,
            on_sent=on_sent,
            sent_before={int(p[6]): str(p[1]) for p in adopted},
        )
    except SendError as exc:
        if not records:
            cause = exc.__cause__
            raise (cause if isinstance(cause, Exception) else exc) from None
        raise PartlySent(
            f"{exc}; a retry adopts the {len(records)} package(s) Preservica has and sends only the rest"
        ) from None
