"""``PreservicaChangesOperator``: what changed in Preservica during the run's data interval, for DAGs on a schedule.

The task-side twin of ``PreservicaChangesTrigger``: the same feed, filters and payload, but the window is
the run's data interval (``since``/``until`` default to ``{{ data_interval_start }}`` and
``{{ data_interval_end }}``), so each scheduled run covers its own stretch and a retry or a re-run of an
old interval reads the same window again — no cursor to keep. Windows of consecutive runs overlap by
``overlap`` seconds (Preservica does not say whether its bounds are inclusive), so a change right at an
interval boundary may be reported by both runs: handle refs idempotently. A window that ends less than
``lag`` seconds ago is refused (retry later): the server may still be committing changes into it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import BaseOperator

from airflow_provider_preservica.changes.events_window import check_event_types, read_event_window
from airflow_provider_preservica.changes.window import (
    DEFAULT_FEED_PAGE,
    DEFAULT_LAG,
    DEFAULT_OVERLAP,
    FeedCursor,
    FeedFilter,
    check_entity_types,
    parse_instant,
    read_window,
)
from airflow_provider_preservica.compat import AirflowException
from airflow_provider_preservica.exceptions import PreservicaConfigError
from airflow_provider_preservica.hooks.preservica import PreservicaHook


def _instant(value: Any, name: str) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if not value:
        raise PreservicaConfigError(
            f"{name} is empty: this run has no data interval (a manual or asset-triggered run?); pass {name}= "
            "as an ISO 8601 date-time"
        )
    return parse_instant(str(value))


class PreservicaChangesOperator(BaseOperator):
    """Return the entities that changed in ``[since, until]``: ``{"since", "until", "refs", "types",
    "deleted", "unresolved", "count", "truncated", "collection", "entity_types", "event_types", "events"}``
    (lists capped at ``max_refs``; ``count`` exact).

    :param collection: a folder ref: only it and everything below it.
    :param entity_types: ``IO`` (assets, default), ``SO`` (folders), ``CO`` (content objects).
    :param event_types: only changes made by Preservica events of these types (``Ingest``, ``Create``,
        ``Modified``, ``Moved``, ``SecurityChanged``, ``Deleted``): the window is read from the entity events.
    """

    template_fields: Sequence[str] = (
        "since",
        "until",
        "collection",
        "entity_types",
        "event_types",
        "preservica_conn_id",
    )
    ui_color = "#c6e2f5"

    def __init__(
        self,
        *,
        collection: str | None = None,
        entity_types: Sequence[str] | None = ("IO", "SO"),
        event_types: Sequence[str] | None = None,
        since: str | datetime | None = "{{ data_interval_start }}",
        until: str | datetime | None = "{{ data_interval_end }}",
        max_refs: int = 1000,
        overlap: float = DEFAULT_OVERLAP,
        lag: float = DEFAULT_LAG,
        page_size: int = DEFAULT_FEED_PAGE,
        preservica_conn_id: str = PreservicaHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if max_refs < 1 or overlap < 0 or lag < 0:
            raise PreservicaConfigError("max_refs must be at least 1, overlap and lag not negative")
        self.collection = collection
        self.entity_types = entity_types
        self.event_types = event_types
        self.since = since
        self.until = until
        self.max_refs = max_refs
        self.overlap = overlap
        self.lag = lag
        self.page_size = page_size
        self.preservica_conn_id = preservica_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        types = check_entity_types(self.entity_types)
        events = check_event_types(self.event_types)
        since, until = _instant(self.since, "since"), _instant(self.until, "until")
        if until <= since:
            raise PreservicaConfigError(f"until ({until.isoformat()}) must be after since ({since.isoformat()})")
        settled = datetime.now(timezone.utc) - timedelta(seconds=self.lag)
        if until > settled:
            raise AirflowException(
                f"the window ends at {until.isoformat()}, not yet {self.lag:g} s in the past: Preservica may still "
                "be writing changes into it; this attempt fails so that a retry reads it whole"
            )
        hook = PreservicaHook(self.preservica_conn_id)
        wanted = FeedFilter(self.collection or None, types, events)
        if events:
            batch, _ = read_event_window(
                hook.entity_events,
                hook.changes,
                hook,
                FeedCursor(since),
                until,
                wanted=wanted,
                overlap=self.overlap,
                page_size=self.page_size,
            )
        else:
            batch, _ = read_window(
                hook.changes,
                hook,
                FeedCursor(since),
                until,
                wanted=wanted,
                overlap=self.overlap,
                page_size=self.page_size,
            )
        self.log.info(
            "Preservica changes %s .. %s: %d changed, %d deleted, %d unresolved (%d feed requests)",
            batch.since,
            batch.until,
            len(batch.changed),
            len(batch.deleted),
            len(batch.unresolved),
            batch.requests,
        )
        return {
            **batch.payload(self.max_refs),
            "collection": self.collection or None,
            "entity_types": list(types) if types else None,
            "event_types": list(events) if events else None,
            "events": batch.events,
        }
