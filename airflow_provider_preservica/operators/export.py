"""``PreservicaExportOperator``: export an entity, wait, stream the zip down, verify it, optionally unpack it."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow_provider_preservica.assets import emit_asset_events, file_asset, preservica_host
from airflow_provider_preservica.compat import AirflowFailException, conf
from airflow_provider_preservica.exceptions import EntityNotFoundError, PreservicaError, ProgressTokenUnknownError
from airflow_provider_preservica.export.verify import require_intact
from airflow_provider_preservica.files.storage import check_writable, is_url, publish_file
from airflow_provider_preservica.files.unpack import unpack_zip
from airflow_provider_preservica.hooks.preservica import (
    RUNNING,
    ExportOptions,
    PreservicaHook,
    Progress,
    ProgressLogger,
)
from airflow_provider_preservica.lineage import entity_dataset, lineage_host, operator_lineage, path_dataset
from airflow_provider_preservica.links import ENTITY_URL_XCOM_KEY, PreservicaEntityLink, explorer_url
from airflow_provider_preservica.operators.base import PreservicaBaseOperator
from airflow_provider_preservica.task_errors import task_errors


class PreservicaExportOperator(PreservicaBaseOperator):
    """Export ``entity_ref`` (folder or asset) to the zip file ``destination``.

    ``destination`` is a local path or an ``ObjectStoragePath`` URL (``s3://``, ``gs://``, ``file://``...). The zip
    is downloaded locally first (resuming with HTTP Range after a dropped connection), verified, and only then
    moved or copied under its final name, so a partial or corrupt export never appears there.

    :param entity_type: ``SO`` or ``IO``; looked up when omitted.
    :param include_content: ``Content`` or ``NoContent``.
    :param include_metadata: ``Metadata``, ``NoMetadata`` or ``MetadataWithEvents``.
    :param generations: ``LatestActive``, ``AllActive`` or ``All``.
    :param unzip_to: also unpack the verified zip into this folder, which must not exist or be empty (see
        ``files.unpack``: nothing is ever overwritten, and a failed unpack leaves nothing behind).
    :param min_free_bytes: refuse to start when the destination's disk has less free space than this.

    Outlets, once the verified zip is in place: an ``Asset`` outlet gets an event whose extra holds ``ref``,
    ``entity_type``, ``path``, ``bytes``, ``sha256``, ``files``, the fixity counts and the progress token; an
    ``AssetAlias`` outlet gets the zip's own asset (``file:///...`` or its URL). Nothing is emitted with
    ``wait_for_completion=False``. With the OpenLineage provider installed, the run reports the entity
    (``preservica://<host>``, ``<ref>``) as input and the zip (and ``unzip_to``) as outputs.
    """

    template_fields: Sequence[str] = ("entity_ref", "destination", "unzip_to", "preservica_conn_id")
    operator_extra_links = (PreservicaEntityLink(),)
    job_kind = "export"
    link_kind = "entity"

    def __init__(
        self,
        *,
        entity_ref: str,
        destination: str,
        entity_type: str | None = None,
        include_content: str = "Content",
        include_metadata: str = "Metadata",
        generations: str = "All",
        parent_hierarchy: bool = True,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 15.0,
        timeout: float = 6 * 3600.0,
        verify: bool = True,
        unzip_to: str | None = None,
        min_free_bytes: int = 1024 * 1024 * 1024,
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
        self.entity_ref = entity_ref
        self.destination = destination
        self.entity_type = entity_type
        self.options = ExportOptions(include_content, include_metadata, generations, parent_hierarchy)
        self.wait_for_completion = wait_for_completion
        self.verify = verify
        self.unzip_to = unzip_to
        self.min_free_bytes = min_free_bytes
        self._preservica_host: str | None = None  # what OpenLineage reports, once the run knows it
        self._result: dict[str, Any] | None = None

    def _batch_id(self, context: Any) -> str:
        return self.job_batch(context, self.entity_ref)

    def _download_dir(self) -> Path:
        """Where the zip is downloaded (resumably, with Range): next to a local destination, else a temp dir."""
        if is_url(self.destination):
            return Path(tempfile.gettempdir())
        return Path(self.destination).expanduser().resolve().parent

    def _preflight(self) -> None:
        check_writable(self.destination)
        if self.unzip_to and is_url(self.unzip_to):
            raise AirflowFailException(f"unzip_to must be a local folder, not {self.unzip_to!r}")
        free = shutil.disk_usage(self._download_dir()).free
        if free < self.min_free_bytes:
            raise AirflowFailException(
                f"only {free / 1048576:.0f} MiB free in {self._download_dir()}; need at least "
                f"{self.min_free_bytes / 1048576:.0f} MiB (min_free_bytes)"
            )

    @task_errors
    def execute(self, context: Any) -> dict[str, Any]:
        self._preflight()
        hook = self.hook
        self._preservica_host = preservica_host(hook.settings.base_url)
        batch_id = self._batch_id(context)
        token = self.adopt(
            context,
            batch_id,
            hook.progress,
            unknown=ProgressTokenUnknownError,
            adoptable=_adoptable,
            describe=lambda progress: progress.status,
        )
        entity_type = self.entity_type or "SO"
        if token is None:
            try:
                entity = hook.entities.get(self.entity_ref, self.entity_type)  # type: ignore[arg-type]
            except EntityNotFoundError as exc:
                raise AirflowFailException(str(exc)) from None  # a retry cannot find it either
            entity_type = entity.entity_type
            token = hook.start_export(entity.ref, entity.entity_type, self.options)
            self.remember(context, batch_id, token, self.destination)
            self.log.info("Export of %s %r started: progress token %s", entity.entity_type, entity.title, token)
        context["ti"].xcom_push(key="progress_token", value=token)
        context["ti"].xcom_push(key="preservica_url", value=hook.settings.base_url)
        self.show_link(context, explorer_url(hook.settings.base_url, self.entity_ref, entity_type))
        if not self.wait_for_completion:
            self.forget(batch_id)  # the progress token is in XCom: whoever waits for it owns it now
            emit_asset_events(self, context, produced=[], extra={}, changed=False)  # no file yet
            return {"progress_token": token}
        self.wait_or_defer(token)
        return self._complete(context, batch_id, token)

    @task_errors
    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        event = self.resumed(context, event)
        self._preservica_host = preservica_host(self.hook.settings.base_url)
        # The batch id, like everything else here, is rebuilt from the context: dag.test() drops defer kwargs.
        return self._complete(context, self._batch_id(context), str(event["progress_token"]))

    def _complete(self, context: Any, batch_id: str, token: str) -> dict[str, Any]:
        """``_finish``, forgetting the export when the task fails for good (no retry will adopt it)."""
        try:
            return self._finish(context, self.hook, batch_id, token)
        except AirflowFailException:
            self.forget(batch_id)
            raise

    def _finish(self, context: Any, hook: PreservicaHook, batch_id: str, token: str) -> dict[str, Any]:
        progress = hook.progress(token)
        if not progress.succeeded:
            self.forget(batch_id)
            raise AirflowFailException(
                f"Preservica export {token} ended {progress.status}: "
                + ("; ".join(progress.errors[:5]) or "no error details returned")
            )
        remote = is_url(self.destination)
        local_target = str(self._download_dir() / f"preservica-export-{token}.zip") if remote else str(self.destination)
        download = hook.download_export(token, local_target)
        result: dict[str, Any] = {
            "progress_token": token,
            "path": download.path,
            "bytes": download.bytes,
            "sha256": download.sha256,
            "resumes": download.resumes,
        }
        if self.verify:
            try:
                name = Path(download.path).name
                check = require_intact(
                    download.path, lambda total, phase: ProgressLogger(total, f"Verifying {name}: {phase}")
                )
            except PreservicaError as exc:
                Path(download.path).unlink(missing_ok=True)  # never leave a bad export under the final name
                raise AirflowFailException(str(exc)) from None
            result.update(
                files=check.files,
                fixities_checked=check.fixities_checked,
                bitstreams_checked=check.bitstreams_checked,
            )
        if self.unzip_to:
            try:
                unpacked = unpack_zip(download.path, self.unzip_to)  # all or nothing, never over other files
            except PreservicaError as exc:
                raise AirflowFailException(str(exc)) from None
            result["unzipped_to"] = str(unpacked.target)
        if remote:
            self.log.info("Copying the verified export to %s", self.destination)
            publish_file(download.path, self.destination)
            Path(download.path).unlink(missing_ok=True)
            result["path"] = self.destination
        self.forget(batch_id)
        self.log.info(
            "Export %s: %s (%s bytes, sha256 %s)", token, result["path"], f"{download.bytes:,}", download.sha256
        )
        self._result = result
        extra = {"ref": self.entity_ref, "entity_type": self.entity_type or _entity_type(context)}
        extra.update({key: result[key] for key in _EXTRA_KEYS if key in result})
        emit_asset_events(self, context, produced=[file_asset(str(result["path"]))], extra=extra)
        return result

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Input: the exported entity; outputs: the zip (bytes, files) and the folder it was unpacked into."""
        host = lineage_host(self)
        result = self._result or {}
        outputs = [path_dataset(self.destination, size=result.get("bytes"), file_count=result.get("files"))]
        if self.unzip_to:
            outputs.append(path_dataset(self.unzip_to))
        return operator_lineage([entity_dataset(host, self.entity_ref)] if host else [], outputs)


def _adoptable(progress: Progress, same_run: bool) -> bool:
    """An export still running, or one an earlier try of this run saw through (a cleared run exports anew)."""
    return progress.status in RUNNING or (progress.succeeded and same_run)


_EXTRA_KEYS = ("path", "bytes", "sha256", "files", "fixities_checked", "bitstreams_checked", "progress_token")


def _entity_type(context: Any) -> str | None:
    """The type the run looked up (its entity link ends in ``SO_<ref>`` or ``IO_<ref>``)."""
    try:
        url = context["ti"].xcom_pull(task_ids=context["ti"].task_id, key=ENTITY_URL_XCOM_KEY)
    except Exception:
        return None
    marker = str(url or "").rsplit("#properties:", 1)[-1][:2]
    return marker if marker in ("SO", "IO") else None
