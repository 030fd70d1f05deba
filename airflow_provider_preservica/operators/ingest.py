"""``PreservicaIngestOperator``: package a folder (or take a zip), upload it, wait until Preservica has ingested it."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from airflow_provider_preservica.assets import capped, emit_asset_events, preservica_asset, preservica_host
from airflow_provider_preservica.compat import AirflowException, AirflowFailException, conf
from airflow_provider_preservica.exceptions import (
    EntityNotFoundError,
    EntityTypeMismatchError,
    IngestClaimTimeout,
    IngestConflictError,
    PreservicaError,
    ProgressTokenUnknownError,
)
from airflow_provider_preservica.files.storage import fetch_to_local, is_url
from airflow_provider_preservica.hooks.preservica import PreservicaHook, Progress
from airflow_provider_preservica.ingest.claims import TargetClaim
from airflow_provider_preservica.ingest.delivery import AdoptionUnknown, PartlySent, adopt_packages, send_delivery
from airflow_provider_preservica.ingest.layout import FolderLayout, check_folder_layout
from airflow_provider_preservica.ingest.packaging import LocalSourceTree, MissingSourceFilesError
from airflow_provider_preservica.ingest.report import IngestReport
from airflow_provider_preservica.ingest.runner import IngestRunner
from airflow_provider_preservica.ingest.split import DEFAULT_MAX_PACKAGE_ASSETS, DEFAULT_MAX_PACKAGE_BYTES
from airflow_provider_preservica.ingest.verify import DEFAULT_VERIFY_WORKERS, VerifyMode, check_verify_mode
from airflow_provider_preservica.ingest.workspace import package_workspace
from airflow_provider_preservica.jobs import InFlightJob, JobRegistry
from airflow_provider_preservica.lineage import entity_dataset, lineage_host, operator_lineage, path_dataset
from airflow_provider_preservica.links import PreservicaEntityLink, explorer_url
from airflow_provider_preservica.operators.base import PreservicaBaseOperator
from airflow_provider_preservica.task_errors import task_errors

REPORT_STATE_KEY = "ingest_report_state"


class PreservicaIngestOperator(PreservicaBaseOperator):
    """Ingest ``source`` into folder ``parent_ref``; nothing is ingested twice, nothing reported done too early.

    :param source: a folder (packaged as OPEX with fixity) or a ready-made zip (XIP SIP or zipped OPEX), as a
        local path or an ``ObjectStoragePath`` URL (``s3://``, ``gs://``, ``file://``...), copied locally first.
    :param parent_ref: the Preservica folder that receives the package. A source folder becomes a new child
        folder of it, named after the source folder, unless ``folder_layout="contents"``.
    :param security_tag: tag for every folder and asset built from a folder; required (no silent ``open``).
    :param batch_id: identifies this delivery; a retry with the same id adopts the ingest in flight.
        Default: ``<dag_id>/<task_id>/<run_id>/<map_index>``.
    :param fixity: checksum written into each file's OPEX sidecar and checked by Preservica: ``SHA-256``
        (default), ``SHA-1``, ``MD5`` or ``SHA-512``. The package format follows ``source``: a folder becomes
        OPEX; a zip is sent as is after a check that it is an XIP v6 SIP or a zipped OPEX tree.
    :param skip_existing: leave out files Preservica already holds below ``parent_ref`` with the same SourceID
        and content (reported as present, with their refs); see "What identifies a file" in the README.
    :param on_conflict: a file whose SourceID an asset below ``parent_ref`` carries with other content is a
        conflict: ``"fail"`` (default) fails the task before uploading anything, naming each file;
        ``"skip"`` ingests the other files and lists the conflicts in the report and as warnings.
    :param wait_for_completion: wait for Preservica's outcome (else return after the upload).
    :param deferrable: wait in the triggerer; default ``[operators] default_deferrable``.
    :param poll_interval: seconds between progress checks.
    :param timeout: seconds to wait for the outcome before failing (the message names the progress token).
    :param verify: how the ingest checks that every asset holds the content its sidecar promised, beyond
        Preservica's own check at ingest (OPEX ingest verifies each file against its sidecar's fixity and fails
        that asset when they differ, which fails the task whatever ``verify`` says). ``"stored"`` (default;
        ``True`` is the same): read each created asset's stored fixity back, two GETs an asset,
        ``max_workers`` at a time, as a reconciler after ingest does. ``"ingest"``: rely on Preservica's check
        and confirm, a search page per 100 files, that every file is found below ``parent_ref`` by SourceID
        with the ``SourceFixity`` identifier it was sent with; no request per asset, for a large delivery
        over a slow link (see "A large delivery" in docs/example-dags.md). ``False``: no check after the
        ingest.
    :param folder_layout: where a source folder lands. ``"source_folder"`` (default): ``parent_ref`` gets one
        new folder named after the source folder (``.../batch-2026-11-25``), holding its files and sub-folders;
        a later run of the same source adds to that folder. ``"contents"``: the source's files and sub-folders
        go straight into ``parent_ref``, with no folder for the source itself. Ready-made zips keep their own
        layout.
    :param work_dir: where the package is built (default ``$TMPDIR``); each ingest uses a new
        ``preservica-ingest-*`` folder in it, removed once the upload is over (success or not) unless
        ``keep_package``. Nothing else in ``work_dir`` is touched.
    :param keep_package: keep the built package; the report (``package``, ``package_kept``) says where.
    :param allow_missing_files: a file found by the scan but gone before it was packaged (moved or deleted
        meanwhile) fails the ingest by default, naming it, before anything is uploaded; ``True`` ingests the
        rest and lists such files in the report's ``missing_files``.
    :param max_package_assets: a source folder with more files than this is split into several packages
        (default 10,000, as The National Archives batches its records); see ``ingest.split`` for the guidance.
    :param max_package_bytes: ... or with more bytes than this (default 20 GiB, under the 24 GiB step from
        which pyPreservica tunes uploads of large packages). A file is never cut: a bigger one travels alone.
        Every file keeps its SourceID, and every package carries the same folders with the same SourceIDs.
    :param package_concurrency: packages uploaded at once (default 2), each with ``upload_concurrency`` parts
        at once. A package that needs a folder another package creates is sent once that one has finished
        (the worker waits, also when deferrable). All packages are built before the first is sent; each is
        recorded as Preservica takes it, so a retry adopts every package sent and sends only the rest. The
        task has one report over all packages (``packages``, ``progress_tokens``) and one outcome: it fails if
        any package fails, naming it, after pushing the report (XCom ``report``) with what the others created.
    :param upload_concurrency: parts of one package sent at once (multipart uploads above 32 MiB).
    :param max_workers: requests to Preservica at once, on the hook's one token, where they do not depend on
        each other: the fixity reads after the ingest (``verify="stored"``: two GETs an asset) and the search
        pages (100 files each) of the skip check and of ``verify="ingest"``. Everything else the ingest asks
        Preservica is read a page at a time.
    :param emit_empty_asset_events: also emit the outlets' asset events when the ingest created no asset
        (nothing new, or ``wait_for_completion=False``); by default such a run triggers nothing downstream.

    Outlets, after a successful ingest that created assets: an ``Asset`` outlet (e.g.
    ``preservica_asset(host, folder_ref)``) gets an event whose extra holds ``ref`` (the folder), ``state``,
    ``created_count``, ``created_refs`` (at most 20), ``skipped_existing``, ``assets_sent``, ``package_bytes``
    and a ``fixity`` summary; an ``AssetAlias`` outlet gets ``preservica://<host>/<parent_ref>`` with that
    extra. With the OpenLineage provider installed, the run reports ``source`` as input and the folder
    (``preservica://<host>``, ``<parent_ref>``) as output.
    """

    template_fields: Sequence[str] = (
        "source",
        "parent_ref",
        "security_tag",
        "batch_id",
        "source_id_namespace",
        "fixity",
        "work_dir",
        "preservica_conn_id",
    )
    ui_color = "#d5f0d0"
    operator_extra_links = (PreservicaEntityLink(),)
    job_kind = "ingest"
    link_kind = "entity"

    def __init__(
        self,
        *,
        source: str,
        parent_ref: str,
        security_tag: str | None = None,
        batch_id: str | None = None,
        source_id_namespace: str | None = None,
        fixity: str = "SHA-256",
        skip_existing: bool = True,
        on_conflict: str = "fail",
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 30.0,
        timeout: float = 6 * 3600.0,
        work_dir: str | None = None,
        keep_package: bool = False,
        allow_missing_files: bool = False,
        folder_layout: FolderLayout = "source_folder",
        upload_concurrency: int = 4,
        max_package_bytes: int = DEFAULT_MAX_PACKAGE_BYTES,
        max_package_assets: int = DEFAULT_MAX_PACKAGE_ASSETS,
        package_concurrency: int = 2,
        verify: bool | VerifyMode = True,
        max_workers: int = DEFAULT_VERIFY_WORKERS,
        emit_empty_asset_events: bool = False,
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
        self.source = source
        self.parent_ref = parent_ref
        self.security_tag = security_tag
        self.batch_id = batch_id
        self.source_id_namespace = source_id_namespace
        self.fixity = fixity
        self.skip_existing = skip_existing
        if on_conflict not in ("fail", "skip"):
            raise ValueError(f"on_conflict must be 'fail' or 'skip', not {on_conflict!r}")
        self.on_conflict = on_conflict
        self.wait_for_completion = wait_for_completion
        self.work_dir = work_dir
        self.keep_package = keep_package
        self.allow_missing_files = allow_missing_files
        self.folder_layout = check_folder_layout(folder_layout)
        self.upload_concurrency = upload_concurrency
        if max_package_bytes < 1 or max_package_assets < 1 or package_concurrency < 1:
            raise ValueError("max_package_bytes, max_package_assets and package_concurrency must be at least 1")
        self.max_package_bytes = max_package_bytes
        self.max_package_assets = max_package_assets
        self.package_concurrency = package_concurrency
        check_verify_mode(verify)  # a wrong value fails at parse time
        self.verify = verify
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, not {max_workers}")
        self.max_workers = max_workers
        self.emit_empty_asset_events = emit_empty_asset_events
        self._preservica_host: str | None = None  # what OpenLineage reports, once the run knows it
        self._report: IngestReport | None = None

    # -- helpers ---------------------------------------------------------------------------
    def _batch_id(self, context: Any) -> str:
        if self.batch_id:
            return str(self.batch_id)
        ti = context["ti"]
        return f"{ti.dag_id}/{ti.task_id}/{ti.run_id}/{getattr(ti, 'map_index', -1)}"

    def _runner(self, hook: PreservicaHook, report: IngestReport) -> IngestRunner:
        return IngestRunner(
            hook,
            report,
            security_tag=self.security_tag,
            upload_concurrency=self.upload_concurrency,
            fixity=self.fixity,
            skip_existing=self.skip_existing,
            source_id_namespace=self.source_id_namespace,
            work_dir=self.work_dir,
            verify=self.verify,
            on_conflict=self.on_conflict,
            allow_missing_files=self.allow_missing_files,
            folder_layout=self.folder_layout,
            max_workers=self.max_workers,
            max_package_bytes=self.max_package_bytes,
            max_package_assets=self.max_package_assets,
        )

    # -- execution -------------------------------------------------------------------------
    @task_errors
    def execute(self, context: Any) -> dict[str, Any]:
        if not is_url(self.source):
            return self._execute(context, self.source)
        # An object-storage source is copied to local disk first: hashing, packaging and a retry's
        # re-check all read it, and the copy keeps names (hence SourceIDs) stable between tries.
        staging = tempfile.mkdtemp(prefix="preservica-source-", dir=self.work_dir)
        try:
            local = fetch_to_local(self.source, staging)
            self.log.info("Copied ingest source %s to %s", self.source, local)
            return self._execute(context, str(local))
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _execute(self, context: Any, source: str) -> dict[str, Any]:
        hook = self.hook
        self._preservica_host = preservica_host(hook.settings.base_url)
        batch_id = self._batch_id(context)
        report = IngestReport(batch_id=batch_id, parent_ref=self.parent_ref)
        runner = self._runner(hook, report)
        registry = self.registry
        self.show_link(context, explorer_url(hook.settings.base_url, self.parent_ref))
        series = self.series(context)
        record = self._adopt(hook, registry, report, series)
        claim = self._claim(hook, report, source) if report.adopted else None  # held until the outcome
        if record is not None and record.complete:
            runner.expect_from_source(source)
        else:
            if record is None:
                try:
                    hook.entities.get(self.parent_ref, "SO")  # before any hashing or upload
                except EntityNotFoundError as exc:
                    reason = exc.what if isinstance(exc, EntityTypeMismatchError) else str(exc)
                    raise AirflowFailException(
                        f"cannot ingest into parent_ref: {reason}; give the reference of a folder"
                    ) from None
                claim = self._claim(hook, report, source)  # before the skip check; a retry of this batch owns it
            adopted = record.sent_packages() if record is not None else []
            try:
                with package_workspace(self.work_dir, report, keep=self.keep_package) as work_dir:
                    runner.work_dir = str(work_dir)
                    built = _released_on_error(None if adopted else claim, runner.prepare, source, adopted)
                    if built:
                        send_delivery(
                            runner,
                            registry,
                            claim,
                            built,
                            adopted,
                            parent_ref=self.parent_ref,
                            series=series,
                            concurrency=self.package_concurrency,
                            claim_seconds=self.timeout,
                            wait_finished=lambda tokens: self._wait(hook, tokens),
                        )
            except IngestConflictError as exc:
                self.log.error("%s", report.summary())
                raise AirflowFailException(str(exc)) from None  # a retry would meet the same conflict
            except MissingSourceFilesError as exc:  # a retry would no longer see those files: it would "succeed"
                raise AirflowFailException(str(exc)) from None
            except PartlySent as exc:  # the claim and the in-flight record stay: a retry adopts what was sent
                raise AirflowException(str(exc)) from None
            if not report.packages:
                _release(claim)
                self.log.info(
                    "Nothing to ingest: all %d assets are already in Preservica", len(report.skipped_existing)
                )
                self.log.info("%s", report.summary())
                self._announce(context, report)
                return report.to_xcom()
        context["ti"].xcom_push(key="progress_token", value=report.progress_token)
        context["ti"].xcom_push(key="progress_tokens", value=report.progress_tokens)
        context["ti"].xcom_push(key="preservica_url", value=hook.settings.base_url)
        if not self.wait_for_completion:
            registry.forget(batch_id)  # the progress tokens are in XCom: whoever waits for them owns them now
            self._announce(context, report)  # nothing is known to be created yet
            return report.to_xcom()
        tokens = report.progress_tokens
        if self.deferrable:
            seen = hook.progress_many(tokens)
            if not all(isinstance(p, Progress) and p.finished for p in seen.values()):
                # The report rides in an XCom of this try (``dag.test()`` drops defer kwargs); what grows with
                # the delivery waits in a file beside the package (rebuilt from the source if it is gone).
                state = report.to_state(spill_dir=self.work_dir or tempfile.gettempdir())
                context["ti"].xcom_push(key=REPORT_STATE_KEY, value=state)
                self.defer_tokens(tokens, end_time=time.time() + self.timeout)
        return self._finish(context, runner, registry, self._wait(hook, tokens))

    def _wait(self, hook: PreservicaHook, tokens: list[str]) -> list[Progress]:
        """Poll every package's progress token in the worker until all have finished."""
        try:
            finished = hook.wait_for_all(tokens, poll_interval=self.poll_interval, timeout=self.timeout, what="ingest")
        except PreservicaError as exc:
            raise AirflowException(str(exc)) from None
        return [finished[token] for token in tokens]

    @task_errors
    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        event = self.resumed(context, event)
        state = context["ti"].xcom_pull(task_ids=self.task_id, key=REPORT_STATE_KEY)
        restored = (
            IngestReport.from_state(state)
            if isinstance(state, dict)
            else IngestReport(batch_id=self._batch_id(context), parent_ref=self.parent_ref)
        )
        hook = self.hook
        self._preservica_host = preservica_host(hook.settings.base_url)
        runner = self._runner(hook, restored)
        if restored.per_file_lost:
            if is_url(self.source):
                restored.warnings.append(
                    "fixity not verified: this ingest's per-file state stayed on the worker that deferred it "
                    "(give work_dir a folder every worker shares)"
                )
            else:
                runner.expect_from_source(self.source)
        results = event.get("results")
        tokens = restored.progress_tokens or (list(results) if isinstance(results, dict) else [])
        tokens = tokens or [str(event["progress_token"])]
        progress = [hook.progress(token) for token in tokens]
        return self._finish(context, runner, self.registry, progress)

    # -- one ingest per target and namespace at a time (ingest/claims.py) ---------------------------
    def _claim(self, hook: PreservicaHook, report: IngestReport, source: str) -> TargetClaim | None:
        """Hold ``parent_ref`` + namespace for this batch; waits while another run ingests the same files there."""
        path = Path(source).expanduser()
        if not path.is_dir():
            return None  # a ready-made zip: Preservica's incremental ingest matches its SourceIDs
        report.claim_key = self.source_id_namespace or LocalSourceTree(path).name
        claim = self._claim_for(report)
        assert claim is not None

        def finished(token: str) -> bool:
            try:
                return hook.progress(token).finished
            except ProgressTokenUnknownError:
                return True
            except PreservicaError:
                return False

        try:
            claim.acquire(self.timeout, finished)
        except IngestClaimTimeout as exc:
            raise AirflowException(str(exc)) from None
        if report.adopted and report.progress_tokens:
            claim.submitted(report.progress_tokens, self.timeout)
        return claim

    def _claim_for(self, report: IngestReport) -> TargetClaim | None:
        if report.claim_key is None:
            return None
        host = self.hook.settings.base_url
        return TargetClaim(host, self.parent_ref, report.claim_key, report.batch_id)

    def _adopt(
        self, hook: PreservicaHook, registry: JobRegistry, report: IngestReport, series: str
    ) -> InFlightJob | None:
        """Pick up the packages an earlier try of this batch sent (``ingest.delivery``)."""
        try:
            return adopt_packages(hook, registry, report, series)
        except AdoptionUnknown as exc:
            raise AirflowException(str(exc)) from None

    def _finish(
        self, context: Any, runner: IngestRunner, registry: JobRegistry, progress: list[Progress]
    ) -> dict[str, Any]:
        report = self._report = runner.report
        try:
            runner.record_outcomes(progress)
        finally:
            report.discard_spill()
            _release(self._claim_for(report))
        summary = report.summary()
        registry.forget(report.batch_id)  # known outcome; a failed ingest is not adopted: a retry starts afresh
        failed = [(p, outcome) for p, outcome in zip(report.packages, progress, strict=False) if not outcome.succeeded]
        if not failed and not report.errors:
            self.log.info("%s", summary)
            self._announce(context, report)
            return report.to_xcom()
        self.log.error("%s", summary)
        context["ti"].xcom_push(key="report", value=report.to_xcom())  # what did get in, for whoever looks
        if failed and len(progress) > 1:
            named = ", ".join(f"package {p['index']} ({p['progress_token']}) ended {o.status}" for p, o in failed)
            head = f"Preservica ingest of {len(progress)} packages: {named}"
        else:
            head = f"Preservica ingest {report.progress_token} ended {report.state}"
        raise AirflowFailException(f"{head}: " + ("; ".join(report.errors[:5]) or "no error details returned"))

    # -- assets and lineage ----------------------------------------------------------------
    def _announce(self, context: Any, report: IngestReport) -> None:
        """Asset events for this run's outlets, only when it created assets (see the class docstring)."""
        self._report = report
        host = lineage_host(self) or ""
        produced = [preservica_asset(host, self.parent_ref)] if host else []
        emit_asset_events(
            self,
            context,
            produced=produced,
            extra=asset_extra(report, self.fixity),
            changed=bool(report.created_refs),
            emit_unchanged=self.emit_empty_asset_events,
        )

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Input: ``source``; output: the folder ``parent_ref``, with the assets created and the package size."""
        host = lineage_host(self)
        outputs = [entity_dataset(host, self.parent_ref)] if host else []
        report = self._report
        if outputs and report is not None and report.state not in ("SUBMITTED", "NOT_SUBMITTED"):
            outputs = [replace(outputs[0], file_count=len(report.created_refs), size=report.package_bytes or None)]
        return operator_lineage([path_dataset(self.source)], outputs)


def _release(claim: TargetClaim | None) -> None:
    if claim is not None:
        claim.release()


def _released_on_error(claim: TargetClaim | None, step: Any, *args: Any) -> Any:
    """Run a step before the upload; if it fails, free the target for other runs at once."""
    try:
        return step(*args)
    except BaseException:
        _release(claim)
        raise


def asset_extra(report: IngestReport, fixity: str) -> dict[str, Any]:
    """What an ingest's asset event says: small, JSON, lists capped like the XCom."""
    manifest = hashlib.sha256()  # streamed: the lines of 100,000 files are 14 MB
    for sid, _, algo, value in report.sent.rows():  # in SourceID order
        manifest.update(f"{sid} {algo} {value}\n".encode())
    return {
        "ref": report.parent_ref,
        "state": report.state,
        "progress_token": report.progress_token,
        "created_count": len(report.created_refs),
        "created_refs": capped(report.created_refs),
        "refs_truncated": len(report.created_refs) > len(capped(report.created_refs)),
        "skipped_existing": len(report.skipped_existing),
        "assets_sent": report.assets_sent,
        "package_bytes": report.package_bytes,
        "fixity": {
            "algorithm": fixity,
            "verified": report.verified,
            # SHA-256 of the sorted "<SourceID> <algorithm> <checksum>" lines the package promised: the same
            # content delivered twice has the same value (null for a ready-made zip).
            "manifest_sha256": manifest.hexdigest() if report.sent else None,
        },
    }
