"""``PreservicaSearchOperator``: every hit of a Content API search into a CSV or JSON Lines report."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import BaseOperator

from airflow_provider_preservica.assets import emit_asset_events, file_asset, preservica_host
from airflow_provider_preservica.compat import AirflowFailException
from airflow_provider_preservica.files.storage import atomic_output, check_writable
from airflow_provider_preservica.hooks.preservica import DEFAULT_FIELDS, DEFAULT_PAGE_SIZE, PreservicaHook, SearchQuery
from airflow_provider_preservica.lineage import entity_dataset, lineage_host, operator_lineage, path_dataset
from airflow_provider_preservica.search.report import format_for, write_report
from airflow_provider_preservica.task_errors import task_errors


def _sort_pairs(sort: Sequence[str] | Mapping[str, str] | None) -> list[tuple[str, Any]]:
    """``["xip.title"]``, ``["-xip.created"]`` or ``{"xip.title": "asc"}`` -> ``[(field, order)]``."""
    if not sort:
        return []
    if isinstance(sort, Mapping):
        return [(name, str(order).lower()) for name, order in sort.items()]
    return [(name[1:], "desc") if name.startswith("-") else (name, "asc") for name in sort]


class PreservicaSearchOperator(BaseOperator):
    """Search Preservica and write all hits to ``output_path`` (local path or object-storage URL).

    :param query: free text; ``%`` (default) matches everything.
    :param filters: ``{"xip.security_descriptor": "open", "xip.document_type": "IO"}``; list values are OR-ed.
    :param exclude: the same shape, negated (``NOT``; Preservica 7.5+).
    :param fields: columns to report; ``xip.reference`` always comes first.
    :param parent_ref: search only below this folder (search-within).
    :param sort: ``["xip.title"]`` or ``["-xip.created"]`` (descending) or ``{"xip.title": "asc"}``.
    :param output_format: ``csv`` or ``jsonl``; default from the file extension.
    :param fail_on_empty: fail (without retries) when nothing matches; by default an empty report succeeds.
    :param max_refs_in_xcom: how many references the returned summary lists at most.

    Outlets: an ``Asset`` outlet gets an event whose extra holds ``path``, ``format``, ``count``, ``total_hits``
    and ``parent_ref``; an ``AssetAlias`` outlet gets the report's own asset (``file:///...`` or its URL).
    With the OpenLineage provider installed, the run reports the searched folder (``preservica://<host>``,
    ``<ref>``; ``@root@`` for the whole repository) as input and the report as output, with its row count.
    """

    template_fields: Sequence[str] = (
        "query",
        "filters",
        "exclude",
        "fields",
        "parent_ref",
        "sort",
        "output_path",
        "preservica_conn_id",
    )
    ui_color = "#c6e2f5"

    def __init__(
        self,
        *,
        output_path: str,
        query: str = "%",
        filters: Mapping[str, Any] | None = None,
        exclude: Mapping[str, Any] | None = None,
        fields: Sequence[str] = DEFAULT_FIELDS,
        parent_ref: str | None = None,
        sort: Sequence[str] | Mapping[str, str] | None = None,
        output_format: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        limit: int | None = None,
        fail_on_empty: bool = False,
        max_refs_in_xcom: int = 20,
        preservica_conn_id: str = PreservicaHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.output_path = output_path
        self.query = query
        self.filters = filters or {}
        self.exclude = exclude or {}
        self.fields = fields
        self.parent_ref = parent_ref
        self.sort = sort
        self.output_format = output_format
        self.page_size = page_size
        self.limit = limit
        self.fail_on_empty = fail_on_empty
        self.max_refs_in_xcom = max_refs_in_xcom
        self.preservica_conn_id = preservica_conn_id
        self._preservica_host: str | None = None  # what OpenLineage reports, once the run knows it
        self._report_rows: int | None = None

    @task_errors
    def execute(self, context: Any) -> dict[str, Any]:
        search_query = SearchQuery(
            text=self.query or "%",
            filters=dict(self.filters),
            exclude=dict(self.exclude),
            fields=list(self.fields),
            sort=_sort_pairs(self.sort),
            parent_ref=self.parent_ref or None,
        )
        report_format = format_for(self.output_path, self.output_format)
        check_writable(self.output_path)
        hook = PreservicaHook(self.preservica_conn_id)
        self._preservica_host = preservica_host(hook.settings.base_url)
        pager = hook.search(search_query, page_size=self.page_size, limit=self.limit)
        columns = search_query.requested_fields
        started = time.monotonic()
        newline = {"newline": ""} if report_format == "csv" and "://" not in self.output_path else {}
        with atomic_output(self.output_path, "w", encoding="utf-8", **newline) as handle:
            summary = write_report(pager, columns, handle, report_format, self.max_refs_in_xcom)
            if summary.rows == 0 and self.fail_on_empty:
                raise AirflowFailException(
                    f"the search matched nothing (query {self.query!r}, filters {dict(self.filters)}, "
                    f"exclude {dict(self.exclude)}) and fail_on_empty is set; no report was written"
                )
        seconds = time.monotonic() - started
        self.log.info(
            "Wrote %s rows (%s columns, %s pages) to %s in %.1f s (%.0f rows/s)",
            f"{summary.rows:,}",
            len(columns),
            pager.pages,
            self.output_path,
            seconds,
            summary.rows / max(seconds, 1e-9),
        )
        self._report_rows = summary.rows
        emit_asset_events(
            self,
            context,
            produced=[file_asset(self.output_path)],
            extra={
                "path": self.output_path,
                "format": report_format,
                "count": summary.rows,
                "total_hits": pager.total,
                "parent_ref": self.parent_ref or None,
            },
        )
        return {
            "count": summary.rows,
            "total_hits": pager.total,
            "path": self.output_path,
            "format": report_format,
            "columns": columns,
            "first_refs": summary.first_refs,
            "refs_truncated": summary.refs_truncated,
        }

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Input: the searched folder (or ``@root@``); output: the report, with its row count when written."""
        host = lineage_host(self)
        inputs = [entity_dataset(host, self.parent_ref)] if host else []
        return operator_lineage(inputs, [path_dataset(self.output_path, row_count=self._report_rows)])
