"""``PreservicaHook``: Connection (or legacy ini) -> shared token -> REST client."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.sdk import BaseHook

from airflow_provider_preservica.client.auth.cache import TokenCache
from airflow_provider_preservica.client.auth.login import PasswordLogin
from airflow_provider_preservica.client.auth.static import StaticTokenProvider
from airflow_provider_preservica.client.auth.stores import VariableTokenStore
from airflow_provider_preservica.client.bitstreams import (
    BitstreamDownload,
    download_bitstream,
    safe_filename,
    unique_name,
)
from airflow_provider_preservica.client.changes import ChangeFeedService
from airflow_provider_preservica.client.deletions import approve_deletion, request_deletion
from airflow_provider_preservica.client.entities import EntityService
from airflow_provider_preservica.client.entity_events import EntityEventsService
from airflow_provider_preservica.client.export import Download, ExportOptions, download_to, start_export
from airflow_provider_preservica.client.http import HttpTransport
from airflow_provider_preservica.client.monitor import IngestMessages, ingest_messages
from airflow_provider_preservica.client.namespaces import Namespaces
from airflow_provider_preservica.client.progress import (
    RUNNING,
    PollErrors,
    Progress,
    look,
    read_many,
    read_progress,
    status_line,
    wait_for_all,
    wait_for_progress,
)
from airflow_provider_preservica.client.rest import PreservicaClient
from airflow_provider_preservica.client.search import DEFAULT_FIELDS, DEFAULT_PAGE_SIZE, SearchPager, SearchQuery
from airflow_provider_preservica.client.transfer_progress import ProgressLogger
from airflow_provider_preservica.client.upload import PackageUploader, UploadResult
from airflow_provider_preservica.client.workflows import (
    WorkflowContext,
    WorkflowInstance,
    find_context,
    list_contexts,
    read_instance,
    start_workflow,
    wait_for_workflow,
)
from airflow_provider_preservica.connection.ini import INI_ENV_VAR, read_ini
from airflow_provider_preservica.connection.settings import PreservicaSettings
from airflow_provider_preservica.connection.sources import settings_from_connection, settings_from_ini
from airflow_provider_preservica.exceptions import PreservicaConfigError, PreservicaError
from airflow_provider_preservica.files.fragments import DEFAULT_MAX_FRAGMENT_BYTES

if TYPE_CHECKING:
    from airflow_provider_preservica.metadata.apply import SheetInput
    from airflow_provider_preservica.metadata.model import RowOutcome
    from airflow_provider_preservica.metadata.runner import MetadataRun

#: The client's types and constants that the Airflow-facing layer (operators, sensors, triggers) and ``@task``
#: code use with the hook's methods: they import them from here, never from ``client.*``.
__all__ = [
    "DEFAULT_FIELDS",
    "DEFAULT_PAGE_SIZE",
    "RUNNING",
    "BitstreamDownload",
    "Download",
    "ExportOptions",
    "IngestMessages",
    "PollErrors",
    "PreservicaHook",
    "Progress",
    "ProgressLogger",
    "SearchPager",
    "SearchQuery",
    "UploadResult",
    "WorkflowContext",
    "WorkflowInstance",
    "look",
    "status_line",
]

#: What ``update_metadata`` uses by default (``metadata.runner.DEFAULT_WORKERS``; a unit test keeps them equal).
METADATA_WORKERS = 8

ApiT = TypeVar("ApiT")


def _connection_missing(exc: Exception) -> bool:
    """Airflow says "not defined" with ``AirflowNotFoundException`` (task SDK and core alike)."""
    return any(cls.__name__ == "AirflowNotFoundException" for cls in type(exc).__mro__) or "isn't defined" in str(exc)


class PreservicaHook(BaseHook):
    """Talk to one Preservica account, sharing its access token with every other task.

    :param preservica_conn_id: the Airflow Connection of type ``preservica`` (``conn_id=`` works too).
    :param ini_path: a legacy ``config.ini`` / ``credentials.properties`` used when that Connection does
        not exist (default: the ``PRESERVICA_INI`` environment variable).
    """

    conn_name_attr = "preservica_conn_id"
    default_conn_name = "preservica_default"
    conn_type = "preservica"
    hook_name = "Preservica"
    #: What tokens are timed by (wall-clock seconds); tests swap in a clock they move instead of sleeping.
    token_clock = staticmethod(time.time)

    def __init__(
        self,
        preservica_conn_id: str = default_conn_name,
        ini_path: str | os.PathLike[str] | None = None,
        *,
        conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.preservica_conn_id = conn_id or preservica_conn_id
        self.ini_path = ini_path

    # -- configuration ------------------------------------------------------------------------
    @cached_property
    def settings(self) -> PreservicaSettings:
        """Where and as whom to connect; read once per hook."""
        conn_id = self.preservica_conn_id
        try:
            conn = self.get_connection(conn_id)
        except Exception as exc:
            if not _connection_missing(exc):
                raise
            ini = self.ini_path or os.environ.get(INI_ENV_VAR)
            if ini:
                self.log.info("Connection %r is not defined; reading legacy credentials from %s", conn_id, ini)
                return settings_from_ini(read_ini(ini), cache_name=conn_id)
            raise PreservicaConfigError(
                f"Airflow Connection {conn_id!r} is not defined. Create it in the UI (Admin > Connections, "
                f'type Preservica), or export AIRFLOW_CONN_{conn_id.upper()}=\'{{"conn_type": "preservica", '
                '"host": "eu.preservica.com", "login": "...", "password": "...", "extra": {"tenant": "..."}}\', '
                f"or point ini_path / ${INI_ENV_VAR} at a legacy config.ini"
            ) from None
        if conn.conn_type and conn.conn_type != self.conn_type:
            self.log.warning("Connection %r has type %r, not 'preservica'; reading it anyway", conn_id, conn.conn_type)
        return settings_from_connection(conn, cache_name=conn_id)

    def _transport(self, settings: PreservicaSettings, **overrides: Any) -> HttpTransport:
        options: dict[str, Any] = {
            "verify": settings.verify,
            "timeout": settings.timeout,
            "max_retries": settings.max_retries,
        }
        options.update(overrides)
        return HttpTransport(settings.base_url, **options)

    # -- tokens and client -------------------------------------------------------------------
    @cached_property
    def token_cache(self) -> TokenCache:
        settings = self.settings
        transport = self._transport(settings)
        store = VariableTokenStore() if settings.token_cache == "variable" else None
        lock_timeout = settings.timeout * (settings.max_retries + 2) + 30
        login = PasswordLogin(settings, transport, clock=self.token_clock)
        return TokenCache(settings, login, store, lock_timeout=lock_timeout, clock=self.token_clock)

    def get_token(self) -> str:
        """A valid access token for this account, shared with other tasks until it expires."""
        return self.token_cache.get_token().value

    def get_pypreservica_client(self, api_class: type[ApiT] | None = None, **kwargs: Any) -> ApiT:
        """A pyPreservica client (``EntityAPI`` by default) that uses this hook's shared token: no extra login.

        Needs the ``[pypreservica]`` extra. ``kwargs`` go to the class's constructor.
        """
        try:
            import pyPreservica
        except ImportError:
            raise PreservicaConfigError(
                "pyPreservica is not installed; pip install 'airflow-provider-preservica[pypreservica]'"
            ) from None
        from airflow_provider_preservica.client.pypreservica import pypreservica_client

        return pypreservica_client(api_class or pyPreservica.EntityAPI, self.settings, self.token_cache, **kwargs)

    def get_conn(self) -> PreservicaClient:
        """The REST client for this account (one pooled session per hook)."""
        return self.client

    @cached_property
    def client(self) -> PreservicaClient:
        settings = self.settings
        self.log.info(
            "Preservica %s (%s; token cache: %s %s)",
            settings.describe(),
            settings.source,
            settings.token_cache,
            settings.token_variable_key if settings.token_cache == "variable" else "",
        )
        return PreservicaClient(self._transport(settings), self.token_cache)

    @cached_property
    def entities(self) -> EntityService:
        """Entity API: ``get``, ``children``, ``find_by_identifier``, ``ensure_folder``, ``set_identifier``,
        ``add_metadata`` (XML namespaces follow the server's version)."""
        return EntityService(self.get_conn())

    @cached_property
    def changes(self) -> ChangeFeedService:
        """The changed-entities feed (``updated-since``): ``page`` and ``read_window`` (every page of a window).
        A cursor that loses nothing is ``changes.window.read_window``, used by the change watcher."""
        return ChangeFeedService(self.get_conn())

    @cached_property
    def entity_events(self) -> EntityEventsService:
        """Entity events (``/api/entity/events``): ``read_events`` (every page, filtered to event types) and
        ``touched`` (the refs an event touched). The watcher's event-type filter is
        ``changes.events_window.read_event_window``."""
        return EntityEventsService(self.get_conn())

    def download_asset(self, ref: str, destination: str | os.PathLike[str]) -> Download:
        """Download an asset's access copy (its preservation copy when it has none), resuming after drops."""
        return download_to(self.get_conn(), f"/api/content/download?id=sdb:IO|{ref}", destination)

    def download_bitstreams(
        self,
        ref: str,
        directory: str | os.PathLike[str],
        representation_type: str = "Preservation",
    ) -> list[BitstreamDownload]:
        """Download every bitstream of an asset's representation (the preservation masters by default).

        Each file is checked against the size and fixity Preservica declares for it (a mismatch deletes the
        file and raises :class:`~airflow_provider_preservica.client.bitstreams.BitstreamMismatchError`).
        Files keep their Preservica names; a name that repeats within the asset gets ``-2``, ``-3``... before
        its suffix.
        """
        bitstreams = self.entities.bitstreams(ref, representation_type)
        if not bitstreams:
            raise PreservicaError(
                f"asset {ref} has no {representation_type} bitstreams; representation_type is 'Preservation' "
                "or 'Access'"
            )
        target = Path(directory).expanduser()
        target.mkdir(parents=True, exist_ok=True)
        results: list[BitstreamDownload] = []
        used: set[str] = set()
        for bitstream in bitstreams:
            name = unique_name(safe_filename(bitstream.filename), used)
            download, checked = download_bitstream(self.get_conn(), bitstream, target / name)
            results.append(
                BitstreamDownload(bitstream.filename, download.path, download.bytes, download.sha256, checked)
            )
        return results

    # -- metadata (the work is in ``metadata.apply``; imported when called: the hook imports no runner) ------
    def update_metadata(
        self,
        sheet: SheetInput,
        *,
        dry_run: bool = False,
        allow_partial: bool = False,
        max_workers: int = METADATA_WORKERS,
        wait: bool = True,
        poll_interval: float = 2.0,
        timeout: float = 3600.0,
        metadata_root: str | os.PathLike[str] | None = None,
        max_fragment_bytes: int = DEFAULT_MAX_FRAGMENT_BYTES,
    ) -> MetadataRun:
        """Bring many entities to the state a sheet describes; writes only what differs (safe to re-run).

        ``sheet``: a CSV / JSON Lines path or ``ObjectStoragePath`` URL, a parsed
        :class:`~airflow_provider_preservica.metadata.sheet.Sheet`, or a list of dicts with the sheet's
        columns as keys. Every row is checked and read before the first write; when any row fails and
        ``allow_partial`` is false, nothing is written. Security tag changes and moves are waited for
        unless ``wait=False`` (their progress tokens are then in ``MetadataRun.pending``).
        ``metadata_file`` values must lie inside ``metadata_root`` (default: the sheet's folder, or the working
        directory for a list of dicts) and no fragment may exceed ``max_fragment_bytes`` or carry a DTD.
        """
        from airflow_provider_preservica.metadata.apply import update_metadata

        return update_metadata(
            self,
            sheet,
            dry_run=dry_run,
            allow_partial=allow_partial,
            max_workers=max_workers,
            wait=wait,
            poll_interval=poll_interval,
            timeout=timeout,
            metadata_root=metadata_root,
            max_fragment_bytes=max_fragment_bytes,
        )

    def update_entity(self, entity: str, *, dry_run: bool = False, **wanted: Any) -> RowOutcome:
        """One entity to a wanted state, e.g. ``hook.update_entity(ref, title="Minutes, 1921",
        security_tag="closed", parent=folder_ref, identifiers={"catalogue": "MS-1"}, metadata=dc_xml)``.

        ``entity`` is a reference (or pass ``identifier_type``/``identifier_value`` and ``entity=""``).
        Returns the row's outcome (``changed``, ``unchanged``, ...); a failure raises ``PreservicaError``.
        """
        from airflow_provider_preservica.metadata.apply import update_entity

        return update_entity(self, entity, dry_run=dry_run, **wanted)

    # -- content API -------------------------------------------------------------------------
    def search(
        self,
        query: SearchQuery | str = "%",
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        limit: int | None = None,
        **kwargs: Any,
    ) -> SearchPager:
        """Every hit of a search, fetched lazily page by page (iterate over the result).

        ``hook.search("maps", filters={"xip.security_descriptor": "open"}, fields=["xip.title"])`` or
        ``hook.search(SearchQuery(...))``.
        """
        search_query = query if isinstance(query, SearchQuery) else SearchQuery(text=query, **kwargs)
        return SearchPager(self.get_conn(), search_query, page_size=page_size, limit=limit)

    # -- ingest: upload and the Process Monitor ----------------------------------------------------------
    def package_uploader(self, *, max_concurrency: int = 4) -> PackageUploader:
        """The S3 uploader of this account's ``<tenant>.package.upload`` bucket, on the hook's shared token.

        Raises :class:`PreservicaError` at once when the Connection has no ``tenant`` extra.
        """
        s = self.settings
        return PackageUploader(s.base_url, s.tenant, self.token_cache, verify=s.verify, max_concurrency=max_concurrency)

    def upload_package(
        self,
        path: str | os.PathLike[str],
        parent_ref: str,
        *,
        key: str | None = None,
        max_concurrency: int = 4,
    ) -> UploadResult:
        """Upload a package (an OPEX or XIP zip) into folder ``parent_ref``; its ``progress_token`` is Preservica's
        handle on the ingest that follows (``wait_for_progress``). Multipart above 32 MiB, ``max_concurrency``
        parts at once."""
        return self.package_uploader(max_concurrency=max_concurrency).upload(path, parent_ref, key=key)

    def ingest_messages(self, upload_key: str) -> IngestMessages:
        """What the Process Monitor recorded for the ingest of ``upload_key``: per-asset errors, warnings and
        the assets created (empty when the monitor is absent or unreadable)."""
        return ingest_messages(self.get_conn(), upload_key)

    # -- deletion: a request, then another (manager) account's approval ----------------------------------
    def request_deletion(self, ref: str, entity_type: str, comment: str) -> str:
        """Ask Preservica to delete a folder (``SO``, with everything below it) or asset (``IO``); the
        progress token, which reads ``PENDING`` until a manager approves."""
        return request_deletion(self.get_conn(), self.entities.ns, ref, entity_type, comment)

    def approve_deletion(
        self, token: str, comment: str, *, approved: bool = True, ns: Namespaces | None = None
    ) -> None:
        """Approve (or reject) a pending deletion request; this hook's account must be another account than
        the requester's, with the manager role. ``ns``: the requester's namespaces (saves reading the version)."""
        approve_deletion(self.get_conn(), ns or self.entities.ns, token, comment, approved=approved)

    # -- long-running jobs: progress tokens, exports, workflows ----------------------------------------------
    def progress(self, token: str) -> Progress:
        """One look at an ingest's, export's or other action's progress token (status, percent, errors)."""
        return read_progress(self.get_conn(), token)

    def wait_for_progress(self, token: str, *, poll_interval: float, timeout: float, what: str = "ingest") -> Progress:
        """Poll ``token`` until it finishes (transient errors waited out); a timeout names the token."""
        return wait_for_progress(self.get_conn(), token, poll_interval=poll_interval, timeout=timeout, what=what)

    def progress_many(
        self, tokens: list[str], map_fn: Callable[..., Iterable[Any]] = map
    ) -> dict[str, Progress | PreservicaError]:
        """One look at each token (``map_fn`` may read them in parallel); a failed read is kept, not raised."""
        return read_many(self.get_conn(), tokens, map_fn)

    def wait_for_all(
        self,
        tokens: list[str],
        *,
        poll_interval: float,
        timeout: float,
        what: str,
        map_fn: Callable[..., Iterable[Any]] = map,
    ) -> dict[str, Progress]:
        """Poll every token until each has finished (transient errors waited out, per token)."""
        return wait_for_all(
            self.get_conn(), tokens, poll_interval=poll_interval, timeout=timeout, what=what, map_fn=map_fn
        )

    def start_export(self, ref: str, entity_type: str, options: ExportOptions | None = None) -> str:
        """Ask Preservica to export a folder (``SO``) or asset (``IO``); returns the progress token."""
        return start_export(self.get_conn(), self.entities.ns, ref, entity_type, options or ExportOptions())

    def download_export(self, token: str, destination: str | os.PathLike[str]) -> Download:
        """Stream a finished export's zip to ``destination`` (resuming with HTTP Range after a drop)."""
        return download_to(self.get_conn(), f"/api/entity/actions/exports/{token}/content", destination)

    def workflow_contexts(self, workflow_type: str | None = None) -> list[WorkflowContext]:
        """Workflow contexts (``Ingest``, ``Access``, ``Transformation``, ``DataManagement``, or all)."""
        return list_contexts(self.get_conn(), workflow_type)

    def find_workflow_context(self, context: str, workflow_type: str | None = None) -> WorkflowContext:
        """The context named (as Preservica shows it, any case) or numbered ``context``; an error lists the others."""
        return find_context(self.get_conn(), context, workflow_type)

    def start_workflow(
        self,
        context: str | WorkflowContext,
        parameters: dict[str, str] | None = None,
        workflow_type: str | None = None,
        correlation_id: str | None = None,
    ) -> str:
        """Start the context named (as Preservica shows it, any case) or numbered ``context``; the instance id."""
        found = context if isinstance(context, WorkflowContext) else self.find_workflow_context(context, workflow_type)
        return start_workflow(self.get_conn(), found, parameters, correlation_id)

    def workflow_instance(self, instance_id: str) -> WorkflowInstance:
        """One look at a workflow instance: state, context, times, errors."""
        return read_instance(self.get_conn(), instance_id)

    def wait_for_workflow(self, instance_id: str, *, poll_interval: float, timeout: float) -> WorkflowInstance:
        """Poll a workflow instance until it stops running; a timeout names the instance."""
        return wait_for_workflow(self.get_conn(), instance_id, poll_interval=poll_interval, timeout=timeout)

    # -- UI --------------------------------------------------------------------------------
    def test_connection(self) -> tuple[bool, str]:
        """Log in afresh (a cached token would not prove the password) and read the server version.

        Runs in the API server, where Variables cannot be written, so it touches no cache.
        """
        try:
            settings = self.settings
        except PreservicaError as exc:
            return False, f"Configuration: {exc}"
        transport = self._transport(settings, max_retries=1, timeout=min(settings.timeout, 20.0))
        try:
            token = PasswordLogin(settings, transport)()
        except PreservicaError as exc:
            return False, f"Login failed: {exc}"
        try:
            version = PreservicaClient(transport, StaticTokenProvider(token)).server_version()
        except PreservicaError as exc:
            return False, f"Logged in, but reading the server version failed: {exc}"
        finally:
            transport.close()
        return True, f"Connected to Preservica {version} as {settings.describe()}"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Form layout for Airflow 3.0/3.1 (3.2+ reads ``conn-fields`` from the provider info)."""
        from airflow_provider_preservica.get_provider_info import UI_FIELD_BEHAVIOUR

        return {
            "hidden_fields": UI_FIELD_BEHAVIOUR["hidden-fields"],
            "relabeling": UI_FIELD_BEHAVIOUR["relabeling"],
            "placeholders": UI_FIELD_BEHAVIOUR["placeholders"],
        }

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra form fields for Airflow 3.0/3.1, built from the same declaration as ``conn-fields``."""
        try:
            from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
            from wtforms import BooleanField, PasswordField, StringField
        except ImportError:
            return {}
        from airflow_provider_preservica.get_provider_info import CONN_FIELDS

        widgets: dict[str, Any] = {}
        for name, spec in CONN_FIELDS.items():
            schema = spec["schema"]
            label = spec["label"]
            types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            if "boolean" in types:
                widgets[name] = BooleanField(label, default=schema.get("default", False))
            elif schema.get("format") == "password":
                widgets[name] = PasswordField(label, widget=BS3PasswordFieldWidget())
            else:
                widgets[name] = StringField(label, widget=BS3TextFieldWidget())
        return widgets
