"""``PreservicaMetadataOperator``: bulk, idempotent metadata corrections from a CSV or JSON Lines sheet."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

from airflow_provider_preservica.assets import (
    ALIAS_ASSET_LIMIT,
    capped,
    emit_asset_events,
    preservica_asset,
    preservica_host,
)
from airflow_provider_preservica.compat import AirflowException, AirflowFailException, conf
from airflow_provider_preservica.exceptions import PreservicaError
from airflow_provider_preservica.files.fragments import DEFAULT_MAX_FRAGMENT_BYTES
from airflow_provider_preservica.files.storage import check_writable
from airflow_provider_preservica.hooks.preservica import PreservicaHook
from airflow_provider_preservica.lineage import (
    ENTITY_OUTPUT_LIMIT,
    entity_dataset,
    lineage_host,
    operator_lineage,
    path_dataset,
)
from airflow_provider_preservica.metadata.model import Outcome
from airflow_provider_preservica.metadata.report import summary, to_xcom, write_report
from airflow_provider_preservica.metadata.runner import DEFAULT_WORKERS, MetadataRun
from airflow_provider_preservica.metadata.sheet import SheetError, stream_sheet
from airflow_provider_preservica.metadata.state import RunStateLost, discard_state, load_state, save_state
from airflow_provider_preservica.operators.base import PreservicaBaseOperator
from airflow_provider_preservica.task_errors import event_error, task_errors

RUN_STATE_KEY = "metadata_run_state"
XCOM_TOKEN_LIMIT = 20  # progress tokens named in the ``progress_tokens`` XCom (the triggerer gets them all)
RETRYABLE = frozenset({Outcome.REJECTED})  # a server fault may pass; a missing entity or a bad row will not


def default_report_path(source: str, dry_run: bool) -> str:
    """Next to the sheet: ``corrections.csv`` -> ``corrections.report.csv`` (``.dry-run.csv`` for a dry run)."""
    path = PurePosixPath(source)
    name = f"{path.stem}.{'dry-run' if dry_run else 'report'}.csv"
    return source[: len(source) - len(path.name)] + name


class PreservicaMetadataOperator(PreservicaBaseOperator):
    """Bring the entities a sheet names to the state it describes: titles, descriptions, security tags,
    moves, identifiers and descriptive metadata fragments.

    Every row is checked and read before the first write, and only what differs is written, so the task is
    safe to re-run: a retry after a crash half way re-applies nothing that already holds. Each row's
    outcome goes to a CSV report (``report_path``, by default next to the sheet) and a summary in the log.

    :param source: the sheet, a local path or an ``ObjectStoragePath`` URL (``.csv``, or ``.jsonl`` for JSON
        Lines); its columns are described in :mod:`airflow_provider_preservica.metadata.sheet`.
    :param dry_run: read everything and report what would change, writing nothing.
    :param allow_partial: apply the good rows even when others are bad, and succeed; by default any failed
        row fails the task, and a row found bad before the first write means nothing is written.
    :param max_workers: rows read and written at once (one shared token, one pooled connection set).
    :param wait_for_completion: wait for Preservica's background work (security tags, moves).
    :param deferrable: wait in the triggerer instead of the worker.
    :param metadata_root: the folder ``metadata_file`` cells may read from; by default the sheet's folder (a
        file elsewhere, by absolute path, ``..`` or a symlink leading out, is a bad row). A local folder or an
        ``ObjectStoragePath`` URL.
    :param max_fragment_bytes: the largest descriptive metadata fragment accepted, inline or from a file
        (default 4 MiB); a larger one is a bad row. Fragments with a DTD (``<!DOCTYPE``) are always refused.
    :param emit_empty_asset_events: also emit the outlets' asset events for a dry run or a sheet that changed
        nothing; by default such a run triggers nothing downstream.
    :param state_dir: where a deferred run keeps every row's outcome while it waits (default ``$TMPDIR``): a
        file of about 100 bytes a row, removed once the outcome is known; the XCom holds only its path,
        checksum and counts. When the triggerer may resume the task on another worker, give a folder every
        worker shares; a resumed task that cannot read it fails the try (retryable) and says so.

    Outlets, when the run changed at least one entity: an ``Asset`` outlet gets an event whose extra holds
    ``source``, ``report``, ``rows``, the count of each outcome (``changed``, ``unchanged``, ``not_found``...)
    and ``changed_refs`` (at most 20); an ``AssetAlias`` outlet gets ``preservica://<host>/<ref>`` of each
    entity changed (at most 100). With the OpenLineage provider installed, the run reports the sheet as input
    and the entities changed (at most 100) and the report as outputs.
    """

    template_fields: Sequence[str] = ("source", "report_path", "metadata_root", "state_dir", "preservica_conn_id")
    ui_color = "#e8f1fb"
    job_kind = "metadata change"

    def __init__(
        self,
        *,
        source: str,
        report_path: str | None = None,
        sheet_format: str | None = None,
        dry_run: bool = False,
        allow_partial: bool = False,
        max_workers: int = DEFAULT_WORKERS,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 5.0,
        timeout: float = 6 * 3600.0,
        emit_empty_asset_events: bool = False,
        metadata_root: str | None = None,
        max_fragment_bytes: int = DEFAULT_MAX_FRAGMENT_BYTES,
        state_dir: str | None = None,
        preservica_conn_id: str = PreservicaHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            deferrable=deferrable,
            poll_interval=poll_interval,
            timeout=timeout,
            preservica_conn_id=preservica_conn_id,
            **kwargs,
        )
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.source = source
        self.report_path = report_path
        self.sheet_format = sheet_format
        self.dry_run_mode = dry_run  # not ``dry_run``: BaseOperator.dry_run() is a method
        self.allow_partial = allow_partial
        self.max_workers = max_workers
        self.wait_for_completion = wait_for_completion
        self.emit_empty_asset_events = emit_empty_asset_events
        self.metadata_root = metadata_root
        self.max_fragment_bytes = max_fragment_bytes
        self.state_dir = state_dir
        self._preservica_host: str | None = None  # what OpenLineage reports, once the run knows it
        self._run: MetadataRun | None = None

    @property
    def _report(self) -> str:
        return self.report_path or default_report_path(str(self.source), self.dry_run_mode)

    @task_errors
    def execute(self, context: Any) -> dict[str, Any]:
        try:
            check_writable(self._report)
            sheet = stream_sheet(  # read row by row as the run goes: flat memory for any length
                str(self.source),
                self.sheet_format,
                metadata_root=self.metadata_root or None,  # a template rendered empty: the sheet's folder
                max_fragment_bytes=self.max_fragment_bytes,
            )
        except PreservicaError as exc:
            raise AirflowFailException(str(exc)) from None
        hook = self.hook
        self._preservica_host = preservica_host(hook.settings.base_url)
        defer = self.deferrable and self.wait_for_completion
        try:
            run = hook.update_metadata(
                sheet,
                dry_run=self.dry_run_mode,
                allow_partial=self.allow_partial,
                max_workers=self.max_workers,
                wait=self.wait_for_completion and not defer,
                poll_interval=self.poll_interval,
                timeout=self.timeout,
            )
        except SheetError as exc:  # found while streaming the sheet, before any write: a retry would not help
            raise AirflowFailException(str(exc)) from None
        except PreservicaError as exc:
            raise AirflowException(str(exc)) from None
        if run.pending:
            context["ti"].xcom_push(key="progress_tokens", value=list(run.pending)[:XCOM_TOKEN_LIMIT])
        if run.pending and defer:
            write_report(run, self._report)  # what was written so far is on record even if the wait is lost
            # The run rides in an XCom of this try (``dag.test()`` drops defer kwargs), as the ingest's report does;
            # every row's outcome waits in a file (``metadata.state``), so the XCom stays small for any sheet.
            state = save_state(run, self.state_dir or tempfile.gettempdir())
            context["ti"].xcom_push(key=RUN_STATE_KEY, value=state)
            self.log.info("Waiting in the triggerer for %d security tag changes and moves", len(run.pending))
            self.defer_tokens(list(run.pending), end_time=time.time() + self.timeout)
        return self._finish(context, run)

    @task_errors
    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        event = event or {}
        state = context["ti"].xcom_pull(task_ids=self.task_id, key=RUN_STATE_KEY)
        state = state if isinstance(state, dict) else {"source": str(self.source)}
        try:
            run = load_state(state)
        except RunStateLost as exc:
            # Not rebuilt: which row a progress token belongs to is only in that file, and re-reading the sheet
            # now would report the rows this try changed as "unchanged". The writes are done and the triggerer
            # saw the background work end, so a retry re-reads the sheet and writes only what still differs.
            raise AirflowException(
                f"the per-row state of this deferred run ({state.get('rows')} rows) cannot be read on this worker: "
                f"{exc}. Its writes were made and {self._report} records them as of the deferral; a retry re-reads "
                "the sheet and writes only what still differs. Give state_dir a folder every worker shares"
            ) from None
        finally:
            discard_state(state)
        results = event.get("results") or {}
        run.finish_background({token: (str(s), list(e)) for token, (s, e) in results.items()})
        if event.get("status") != "finished":
            write_report(run, self._report)
            raise event_error(
                event,
                f"{event.get('message') or f'waiting for Preservica failed: {event}'}; the report {self._report} "
                "marks the rows still pending (a retry re-reads them and writes only what is missing)",
            )
        return self._finish(context, run)

    def _finish(self, context: Any, run: MetadataRun) -> dict[str, Any]:
        self._run = run
        write_report(run, self._report)
        self.log.info("%s", summary(run, self._report))
        counts = run.counts()
        failed = run.first_failed(1)
        if failed and not self.allow_partial:
            first = failed[0]
            message = (
                f"{run.failed_count} of {run.rows} rows failed (first: row {first.row}, {first.locator}: "
                f"{first.outcome.value}: {first.message}); see {self._report}"
            )
            if run.held_back:
                message += ". Nothing was written; fix those rows or set allow_partial=True"
            if any(counts.get(o) for o in RETRYABLE) and not run.held_back:
                raise AirflowException(message)
            raise AirflowFailException(message)
        summary_xcom = to_xcom(run, self._report)
        changed = _changed_refs(run)
        host = lineage_host(self) or ""
        emit_asset_events(
            self,
            context,
            produced=[preservica_asset(host, ref) for ref in changed] if host else [],
            extra={
                "source": str(self.source),
                **{k: v for k, v in summary_xcom.items() if k != "failed_rows"},
                "changed_refs": capped(changed),
                "refs_truncated": len(changed) > len(capped(changed)),
            },
            changed=bool(changed) and not run.dry_run,
            emit_unchanged=self.emit_empty_asset_events,
        )
        return summary_xcom

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Input: the sheet; outputs: the entities changed (at most 100) and the per-row report."""
        host = lineage_host(self)
        run = self._run
        changed = _changed_refs(run)[:ENTITY_OUTPUT_LIMIT] if run is not None and not run.dry_run else []
        outputs = [entity_dataset(host, ref) for ref in changed] if host else []
        outputs.append(path_dataset(self._report, row_count=run.rows if run is not None else None))
        return operator_lineage([path_dataset(str(self.source))], outputs)


def _changed_refs(run: MetadataRun) -> list[str]:
    """The first entities changed: enough for every list that names them (each is capped lower)."""
    limit = max(ENTITY_OUTPUT_LIMIT, ALIAS_ASSET_LIMIT) + 1  # one more: ``refs_truncated`` tells
    return [o.ref for o in run.first_with(Outcome.CHANGED, limit) if o.ref]
