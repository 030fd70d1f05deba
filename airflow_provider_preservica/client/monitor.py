"""Process Monitor API (JSON): the per-asset story of an ingest that the progress token does not tell.

The progress token says COMPLETED or FAILED for the whole package; the Process Monitor says which asset
failed and why, which were skipped, and which entity each asset became. The monitor of a package upload is
named after the uploaded object key (category ``Ingest``). Monitor ids can change between Preservica
releases, so they are looked up each time, never stored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_preservica.client.rest import PreservicaClient
from airflow_provider_preservica.exceptions import PreservicaError

log = logging.getLogger(__name__)

MONITORS = "/api/processmonitor/monitors"
MESSAGES = "/api/processmonitor/messages"
ASSET_INGESTED = "monitor.info.successful.ingest.with.opex"
PAGE_SIZE = 1000
MAX_MESSAGES = 100_000


@dataclass(frozen=True)
class MonitorMessage:
    status: str  # Info, Warning, Error, Debug
    code: str  # e.g. monitor.info.successful.ingest.with.opex
    text: str
    path: str = ""
    entity_ref: str | None = None
    source_id: str | None = None

    @property
    def asset_ingested(self) -> bool:
        return self.code.split("|", 1)[0] == ASSET_INGESTED and bool(self.entity_ref)

    def describe(self) -> str:
        where = f"{self.path}: " if self.path and self.path not in self.text else ""
        return f"{where}{self.text}"


@dataclass
class IngestMessages:
    """What the Process Monitor recorded for one package."""

    monitor_id: str | None = None
    monitor_status: str | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    created: dict[str, str] = field(default_factory=dict)  # SourceID -> entity ref

    @property
    def found(self) -> bool:
        return self.monitor_id is not None


def _value(payload: Any) -> dict[str, Any]:
    if isinstance(payload, dict) and isinstance(payload.get("value"), dict):
        return payload["value"]
    return {}


def find_ingest_monitor(client: PreservicaClient, name: str) -> dict[str, Any] | None:
    """The Ingest monitor named ``name`` (the uploaded object key), or ``None`` if Preservica has none."""
    monitors = _value(client.get_json(MONITORS, params={"name": name, "category": "Ingest"})).get("monitors") or []
    exact = [m for m in monitors if isinstance(m, dict) and m.get("name") == name]
    return exact[0] if exact else None


def iter_messages(
    client: PreservicaClient, monitor_id: str, statuses: tuple[str, ...] = ()
) -> Iterator[MonitorMessage]:
    """Every message of one monitor, following ``paging.next``."""
    params: dict[str, Any] = {"monitor": monitor_id, "start": 0, "max": PAGE_SIZE}
    if statuses:
        params["status"] = ",".join(statuses)
    url: str | None = MESSAGES
    seen = 0
    while url and seen < MAX_MESSAGES:
        value = _value(client.get_json(url, params=params))
        for raw in value.get("messages") or []:
            seen += 1
            yield MonitorMessage(
                status=str(raw.get("status") or ""),
                code=str(raw.get("message") or ""),
                text=str(raw.get("displayMessage") or raw.get("message") or ""),
                path=str(raw.get("path") or ""),
                entity_ref=raw.get("entityRef") or None,
                source_id=raw.get("sourceId") or None,
            )
        url = (value.get("paging") or {}).get("next")
        params = {}  # the next URL carries its own query


def ingest_messages(client: PreservicaClient, upload_key: str) -> IngestMessages:
    """Errors, warnings and created assets of the ingest of ``upload_key``; empty if the monitor is absent.

    A Process Monitor that cannot be read is logged and treated as absent: the progress token remains the
    authority on success or failure, the monitor only adds detail.
    """
    try:
        monitor = find_ingest_monitor(client, upload_key)
        if monitor is None:
            log.info("No Process Monitor named %s; per-asset messages unavailable", upload_key)
            return IngestMessages()
        result = IngestMessages(monitor_id=str(monitor.get("mappedId")), monitor_status=monitor.get("status"))
        for message in iter_messages(client, str(monitor.get("mappedId"))):
            if message.status == "Error":
                result.errors.append(message.describe())
            elif message.status == "Warning":
                result.warnings.append(message.describe())
            elif message.asset_ingested and message.source_id:
                result.created[message.source_id] = str(message.entity_ref)
        return result
    except PreservicaError as exc:
        log.warning("Could not read the Process Monitor for %s (%s); relying on the progress token", upload_key, exc)
        return IngestMessages()
