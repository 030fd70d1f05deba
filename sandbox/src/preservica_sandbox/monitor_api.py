"""Process Monitor API (JSON): ``/api/processmonitor/monitors``, ``/monitors/{id}``, ``/monitors/{id}/timeseries``
and ``/messages``.

One monitor per ingest job (category ``Ingest``, subcategory ``OPEX`` or ``XIP``), of the caller's tenant
only. ``mappedId`` is the job's progress token without hyphens; ``name`` the uploaded object key, or
``opex/<container>`` for the incremental workflow. Status: ``Pending`` -> ``Running`` -> ``Succeeded`` |
``Failed`` (a ``FINISHED_MIXED_OUTCOME``, aborted or cancelled ingest is ``Failed``). ``filesProcessed`` /
``filesPending`` count the package's folders and assets; ``warnings``/``errors`` count messages.

Filters (``status``, ``category``, ``subcategory``, ``name``; each a comma-separated list, case-insensitive,
``name`` may use ``*`` globs) are AND-ed. ``/messages``: ``monitor`` (comma-separated mapped ids; absent =
every monitor of the tenant), ``status`` (``Info``, ``Warning``, ``Error``, ``Debug``), ``start`` (0),
``max`` (25, at most 1000); ``paging.next``/``paging.previous`` are absolute URLs and only present when
there is such a page. Bad ``start``/``max`` -> 400; an unknown monitor id in ``/monitors/{id}`` -> 404.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from fastapi import APIRouter, Request

from .entities import iso_timestamp
from .errors import SandboxHTTPError
from .ingest import IngestService
from .ingest_jobs import MONITOR_STATES, IngestJob, MonitorMessage
from .security import StateDep, TokenSession

router = APIRouter(prefix="/api/processmonitor", tags=["process monitor"])
DEFAULT_MAX = 25
LIMIT = 1000


def _values(request: Request, name: str) -> list[str]:
    out: list[str] = []
    for raw in request.query_params.getlist(name):
        out.extend(v.strip() for v in raw.split(",") if v.strip())
    return out


def _int(request: Request, name: str, default: int, minimum: int, maximum: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SandboxHTTPError(400, f"{name} must be an integer") from None
    if value < minimum:
        raise SandboxHTTPError(400, f"{name} must be at least {minimum}")
    return min(value, maximum) if maximum is not None else value


def monitor_json(job: IngestJob) -> dict[str, Any]:
    record = job.progress
    status = MONITOR_STATES.get(record.status, "Pending")
    errors = sum(1 for m in job.messages if m.status == "Error")
    warnings = sum(1 for m in job.messages if m.status == "Warning")
    running = record.status == "ACTIVE"
    return {
        "mappedId": job.monitor_id,
        "name": job.name,
        "status": status,
        "started": iso_timestamp(record.started) if record.started is not None else None,
        "completed": iso_timestamp(record.finished) if record.finished is not None else None,
        "category": "Ingest",
        "subcategory": job.subcategory or "OPEX",
        "progressText": f"Processed {job.files_processed} of {job.files_total}" if running else "",
        "percentComplete": f"{int(record.percent)}" if running else "",
        "filesPending": max(0, job.files_total - job.files_processed),
        "size": job.size,
        "filesProcessed": job.files_processed,
        "warnings": warnings,
        "errors": errors,
        "canRetry": status == "Failed",
    }


def message_json(job: IngestJob, message: MonitorMessage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "workflowInstanceId": job.workflow_id,
        "monitorName": job.name,
        "path": message.path,
        "date": message.date,
        "status": message.status,
        "displayMessage": message.display,
        "workflowName": job.context.name,
        "mappedMonitorId": job.monitor_id,
        "message": message.message,
        "mappedId": message.id,
    }
    if message.security_descriptor is not None:
        out["securityDescriptor"] = message.security_descriptor
    if message.entity_title is not None:
        out["entityTitle"] = message.entity_title
    if message.entity_ref is not None:
        out["entityRef"] = message.entity_ref
    if message.source_id is not None:
        out["sourceId"] = message.source_id
    return out


def _matches(value: str, wanted: list[str], glob: bool = False) -> bool:
    if not wanted:
        return True
    if glob:
        return any(fnmatch.fnmatchcase(value.lower(), w.lower()) for w in wanted)
    return value.lower() in {w.lower() for w in wanted}


def _envelope(value: dict[str, Any]) -> dict[str, Any]:
    return {"success": True, "version": 1, "value": value}


def _monitors(service: IngestService, tenant: str) -> list[IngestJob]:
    return [job for job in service.jobs(tenant) if job.has_monitor]


@router.get("/monitors")
async def monitors(request: Request, state: StateDep, session: TokenSession) -> dict[str, Any]:
    statuses, categories = _values(request, "status"), _values(request, "category")
    subcategories, names = _values(request, "subcategory"), _values(request, "name")
    start = _int(request, "start", 0, 0)
    maximum = _int(request, "max", LIMIT, 1, LIMIT)
    service = state.ingest
    with service.reading():
        rows = [monitor_json(job) for job in _monitors(service, session.tenant)]
    rows = [
        row
        for row in rows
        if _matches(row["status"], statuses)
        and _matches(row["category"], categories)
        and _matches(row["subcategory"], subcategories)
        and _matches(row["name"], names, glob=True)
    ]
    rows.reverse()  # newest first
    return _envelope({"paging": {"totalResults": len(rows)}, "monitors": rows[start : start + maximum]})


def _job(service: IngestService, mapped_id: str, tenant: str) -> IngestJob:
    job = service.job_by_monitor(mapped_id)
    if job is None or job.tenant != tenant:
        raise SandboxHTTPError(404, f"no monitor {mapped_id}")
    return job


@router.get("/monitors/{mapped_id}")
async def monitor(mapped_id: str, state: StateDep, session: TokenSession) -> dict[str, Any]:
    service = state.ingest
    job = _job(service, mapped_id, session.tenant)
    with service.reading():
        return _envelope({"monitor": monitor_json(job)})


@router.get("/monitors/{mapped_id}/timeseries")
async def timeseries(mapped_id: str, state: StateDep, session: TokenSession) -> dict[str, Any]:
    service = state.ingest
    job = _job(service, mapped_id, session.tenant)
    with service.reading():
        return _envelope({"timeseries": [dict(point) for point in job.timeseries]})


@router.get("/messages")
async def messages(request: Request, state: StateDep, session: TokenSession) -> dict[str, Any]:
    wanted_monitors = {m.lower() for m in _values(request, "monitor")}
    statuses = _values(request, "status")
    start = _int(request, "start", 0, 0)
    maximum = _int(request, "max", DEFAULT_MAX, 1, LIMIT)
    service = state.ingest
    with service.reading():
        rows = [
            message_json(job, message)
            for job in _monitors(service, session.tenant)
            if not wanted_monitors or job.monitor_id in wanted_monitors
            for message in job.messages
            if _matches(message.status, statuses)
        ]
    paging: dict[str, Any] = {"totalResults": len(rows)}
    base = request.url.remove_query_params(["start", "max"])
    if start + maximum < len(rows):
        paging["next"] = str(base.include_query_params(start=start + maximum, max=maximum))
    if start > 0:
        paging["previous"] = str(base.include_query_params(start=max(0, start - maximum), max=maximum))
    return _envelope({"paging": paging, "messages": rows[start : start + maximum]})
