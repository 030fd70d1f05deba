"""Content API search: one query description, and a generator that pages through every hit.

The generator holds one page at a time, so a report over a million assets runs in constant memory.
Pages follow ``start``/``max`` in the server's stable order; the first page's ``totalHits`` bounds
the walk, and an empty page ends it early (the repository may shrink while we read it).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from airflow_provider_preservica.client.rest import PreservicaClient
from airflow_provider_preservica.exceptions import PreservicaHTTPError, PreservicaSearchError

log = logging.getLogger(__name__)

SEARCH_PATH = "/api/content/search"
SEARCH_WITHIN_PATH = "/api/content/search-within"
REFERENCE_FIELD = "xip.reference"
DEFAULT_FIELDS = ("xip.title", "xip.document_type", "xip.parent_ref", "xip.security_descriptor")
DEFAULT_PAGE_SIZE = 500
SortOrder = Literal["asc", "desc"]


FilterValues = str | Sequence[str]


def _as_list(values: FilterValues) -> list[str]:
    return [values] if isinstance(values, str) else [str(v) for v in values]


@dataclass(frozen=True)
class SearchQuery:
    """What to look for. ``filters`` restrict (values OR-ed), ``exclude`` negates (Preservica 7.5+)."""

    text: str = "%"
    filters: Mapping[str, FilterValues] = field(default_factory=dict)
    exclude: Mapping[str, FilterValues] = field(default_factory=dict)
    fields: Sequence[str] = DEFAULT_FIELDS
    sort: Sequence[tuple[str, SortOrder]] = ()
    parent_ref: str | None = None

    def __post_init__(self) -> None:
        for name, order in self.sort:
            if order not in ("asc", "desc"):
                raise PreservicaSearchError(f"sort order for {name!r} must be 'asc' or 'desc', not {order!r}")
        for name in [*self.filters, *self.exclude, *self.fields, *(n for n, _ in self.sort)]:
            if not isinstance(name, str) or "." not in name:
                raise PreservicaSearchError(
                    f"search field {name!r} is not an index name such as 'xip.title' "
                    "(GET /api/content/indexed-fields lists them)"
                )

    @property
    def requested_fields(self) -> list[str]:
        """Fields to return, reference first, each once."""
        names = [REFERENCE_FIELD, *self.fields]
        return list(dict.fromkeys(names))

    @property
    def metadata_fields(self) -> list[str]:
        """What to ask the server for: the reference already comes with every hit's object id."""
        return [name for name in self.requested_fields if name != REFERENCE_FIELD]

    def q_json(self) -> str:
        """The ``q`` parameter: JSON built by a serialiser, so quotes in values cannot break it."""
        body: dict[str, Any] = {"q": self.text or "%"}
        fields = [{"name": name, "values": _as_list(values)} for name, values in self.filters.items()]
        fields += [
            {"name": name, "values": _as_list(values), "operator": "NOT"} for name, values in self.exclude.items()
        ]
        if fields:
            body["fields"] = fields
        if self.sort:
            body["sort"] = [{"sortFields": [name], "sortOrder": order} for name, order in self.sort]
        return json.dumps(body)


@dataclass(frozen=True)
class SearchHit:
    reference: str
    entity_type: str
    fields: dict[str, Any]

    def value(self, name: str) -> Any:
        if name == REFERENCE_FIELD:
            return self.fields.get(name, self.reference)
        return self.fields.get(name)


def _parse_object_id(object_id: str) -> tuple[str, str]:
    """``sdb:IO|<uuid>`` -> (``IO``, ``<uuid>``)."""
    prefix, _, ref = object_id.partition("|")
    return prefix.rsplit(":", 1)[-1], ref or object_id


def _row_to_dict(row: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for item in row or []:
        if isinstance(item, dict) and "name" in item:
            values[str(item["name"])] = item.get("value")
    return values


class SearchPager:
    """Iterates over every hit of a query. ``total`` is known after the first page."""

    def __init__(
        self,
        client: PreservicaClient,
        query: SearchQuery,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        limit: int | None = None,
        log_every: float = 10.0,
    ) -> None:
        if page_size < 1:
            raise PreservicaSearchError(f"page_size must be at least 1, not {page_size}")
        if limit is not None and limit < 0:
            raise PreservicaSearchError(f"limit must not be negative, not {limit}")
        self.client = client
        self.query = query
        self.page_size = page_size
        self.limit = limit
        self.total: int | None = None
        self.pages = 0
        self.yielded = 0
        self._log_every = log_every

    def _fetch(self, start: int, size: int) -> dict[str, Any]:
        form: dict[str, str] = {
            "q": self.query.q_json(),
            "start": str(start),
            "max": str(size),
            "metadata": ",".join(self.query.metadata_fields),
        }
        path = SEARCH_PATH
        if self.query.parent_ref:
            path = SEARCH_WITHIN_PATH
            form["parenthierarchy"] = self.query.parent_ref
        try:
            response = self.client.request("POST", path, data=form, retry_unsafe=True)
        except PreservicaHTTPError as exc:
            if exc.status == 400:
                raise PreservicaSearchError(f"Preservica rejected the search query: {exc.detail}") from None
            if exc.status == 404 and self.query.parent_ref:
                raise PreservicaSearchError(
                    f"parent folder {self.query.parent_ref!r} does not exist on {self.client.base_url}"
                ) from None
            raise
        try:
            body = response.json()
            return dict(body["value"])
        except (ValueError, KeyError, TypeError):
            raise PreservicaHTTPError(response.status_code, "POST", path, "unexpected search response") from None

    def __iter__(self) -> Iterator[SearchHit]:
        start = 0
        started = time.monotonic()
        last_log = started
        while True:
            wanted = self.page_size
            if self.limit is not None:
                wanted = min(wanted, self.limit - self.yielded)
                if wanted <= 0:
                    return
            value = self._fetch(start, wanted)
            self.pages += 1
            ids = list(value.get("objectIds") or [])
            rows = list(value.get("metadata") or [])
            if self.total is None:
                self.total = int(value.get("totalHits") or 0)
            for index, object_id in enumerate(ids):
                entity_type, ref = _parse_object_id(str(object_id))
                fields = _row_to_dict(rows[index] if index < len(rows) else [])
                yield SearchHit(reference=ref, entity_type=entity_type, fields=fields)
                self.yielded += 1
            start += len(ids)
            now = time.monotonic()
            if now - last_log >= self._log_every:
                last_log = now
                rate = self.yielded / max(now - started, 1e-9)
                log.info("Search: %s of %s hits (%.0f hits/s)", f"{self.yielded:,}", f"{self.total:,}", rate)
            if not ids or start >= self.total:
                return
