"""The fault matrix: one definition of each fault scenario, run by pytest (``tests/faults``) and by ``faults.py``.

Every scenario is a real Airflow task (``dag.test()`` on the caller's Airflow home) running one of our operators
against the in-process Preservica sandbox, with a sandbox fault injected before the run or in the middle of it.
A scenario states what a user must see (task state, number of logins, the words the error names); running it
returns what happened and whether anything was lost or duplicated:

- search report (60 assets, pages of 10): lost = assets missing from a finished report, duplicated = rows
  repeated; a failed task must leave no report behind;
- ingest (4 files): lost = files without an asset (after a failure too: the files the failed ingest did not
  put in Preservica, which the task's error announces), duplicated = extra copies of an asset plus ingests
  started beyond one;
- export (a folder of 3 assets): lost = a downloaded zip that differs from the sandbox's own export file,
  duplicated = exports started beyond one; a failed task must leave no file behind (``unzip``: the export is
  also unpacked into ``out/unpacked``, so a partial unpack counts too). Hostile exports (the sandbox's
  ``hostile_export`` fault serves the real export plus one crafted member) must fail verification, naming it;
- refresh race (``work="refresh_race"``): two OS processes with separate lock directories (two worker
  hosts) each run the scenario's one-task DAG with ``dag.test()`` and find the shared token due for
  renewal at the same moment; the task succeeds only if every process's calls do.

Redirect scenarios point the sandbox's ``redirect`` fault at ``{elsewhere}``: a second origin on loopback
(``other_origin.OtherOrigin``) that records what reaches it. The task must fail (or recover) with an error
naming that origin, and the other origin must receive nothing: no password, 2FA code, token or refresh token.

Faults "in the middle" are posted before the run with the sandbox's ``after``: they let a given number of
requests on a route through (for example: the first progress poll) and land on the next one. The caller
provides the Airflow environment (Airflow reads its configuration at import) and a started
``SandboxServer`` that knows ``user``.

This module has no pytest dependency; it imports Airflow lazily, inside functions.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks import harness
from tests.support import REPO
from tests.support.airflow_db import sync_dag_bundles

if TYPE_CHECKING:
    from preservica_sandbox import SandboxServer, SandboxUser

    from airflow_provider_preservica.client.auth.token import AccessToken
    from airflow_provider_preservica.connection.settings import PreservicaSettings

PACKAGE_LOGGER = "airflow_provider_preservica"
CONN_ID = "preservica_default"
CONN_ENV = f"AIRFLOW_CONN_{CONN_ID.upper()}"
TOKEN_VARIABLE = f"preservica_access_token__{CONN_ID}"
SEARCH_REF = "f0000000-0000-4000-8000-000000000001"
EXPORT_REF = "f0000000-0000-4000-8000-000000000002"
INGEST_REF = "f0000000-0000-4000-8000-000000000003"
SEARCH_ASSETS = 60
SEARCH_PAGE = 10
EXPORT_ASSETS = 3
INGEST_FILES = 4
PROGRESS = "GET /api/entity/progress/"  # a route prefix, as the sandbox counts requests
SEARCH = "POST /api/content/"
SANDBOX_CONFIG = {"token_lifetime": 900, "ingest_seconds": 0.6, "export_seconds": 0.4}
SEARCH_ROUTES = "POST /api/content/*"
#: Every search page takes this long, so that a fault posted "after page 2" lands in the middle of the report.
SLOW_PAGES = {"kind": "latency", "route": SEARCH_ROUTES, "seconds": 0.1, "count": None}
PROGRESS_ROUTES = "GET /api/entity/progress/*"
EXPORT_CONTENT = "GET /api/entity/actions/exports/*/content"
REFRESH_ROUTE = "POST /api/accesstoken/refresh"
LEASE_VARIABLE = f"preservica_login_lease__{CONN_ID}"
#: The refresh race: simulated worker hosts, and how much of the seeded token's 900 s is left (due: < 300 s).
RACE_HOSTS = 2
RACE_TOKEN_LEFT = 250.0
#: In a fault, stands for the base URL of the recording second origin (``other_origin.OtherOrigin``).
ELSEWHERE = "{elsewhere}"
LOGIN_ROUTE = "POST /api/accesstoken/login"
#: A redirect's Location: the same path on the other origin.
TO_ELSEWHERE = ELSEWHERE + "{path}"
#: What a redirect off the origin must be refused with (``PreservicaRedirectError``).
REFUSED_REDIRECT = "with a redirect to another origin"
#: Both refreshes are held this long at the sandbox, so that they are in flight together.
SLOW_REFRESH = {"kind": "latency", "route": REFRESH_ROUTE, "seconds": 1.0, "count": RACE_HOSTS}
#: Without the lease both hosts send the refresh: each is held until both have arrived (not a timing bet).
RACED_REFRESHES = {
    "kind": "latency",
    "route": REFRESH_ROUTE,
    "seconds": 120,
    "together": RACE_HOSTS,
    "count": RACE_HOSTS,
}


@dataclass(frozen=True)
class During:
    """``faults`` that apply once ``after`` requests on routes starting with ``route`` went through.

    They are posted before the run with the sandbox's ``after`` (and, for token faults, ``route``), so
    they land at that request exactly, however fast or slow the machine: no watcher racing the work.
    """

    route: str
    after: int
    faults: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Scenario:
    """One row of the fault matrix: the work, the fault, and what the user must see."""

    id: str
    title: str
    work: str  # "search" | "ingest" | "export" | "refresh_race"
    expect_state: str  # "success" | "failed"
    expect_logins: int
    evidence: str  # words the task log must contain: the error's cause, or the recovery's trace
    faults: tuple[dict[str, Any], ...] = ()  # posted to /_sandbox/faults before the run
    ingest_faults: tuple[dict[str, Any], ...] = ()  # posted to /_sandbox/ingest-faults before the run
    during: During | None = None
    conn_extra: dict[str, Any] = field(default_factory=dict)
    deferrable: bool = False
    retries: int = 0
    max_requests: dict[str, int] = field(default_factory=dict)  # route prefix -> at most this many (no loop)
    sandbox_config: dict[str, Any] = field(default_factory=dict)  # over SANDBOX_CONFIG
    expect_refreshes: int | None = None  # successful refreshes the sandbox counts (None: not checked)
    unzip: bool = False  # export: also unpack into out/unpacked (unzip_to)
    known_issue: str | None = None  # set when our client misbehaves: the test is then xfail(strict=True)
    due_token: bool = False  # the shared token is due for renewal when the task starts (seeded, not waited for)


SCENARIOS: list[Scenario] = [
    Scenario(
        id="token_revoked_mid_ingest",
        title="token revoked while an ingest is awaited",
        work="ingest",
        during=During(PROGRESS, 1, ({"kind": "revoke_token", "user": "{user}"},)),
        sandbox_config={"ingest_seconds": 1.5},  # still running when the fault lands
        expect_state="success",
        expect_logins=2,
        evidence="rejected the cached token",
    ),
    Scenario(
        id="tokens_expired_mid_export",
        title="all tokens expired at once (export wait)",
        work="export",
        during=During(PROGRESS, 1, ({"kind": "expire_tokens"},)),
        sandbox_config={"export_seconds": 1.5},  # still running when the fault lands
        expect_state="success",
        expect_logins=2,
        evidence="rejected the cached token",
    ),
    Scenario(
        id="tokens_expired_mid_deferred_export",
        title="all tokens expired at once (deferred export, triggerer)",
        work="export",
        deferrable=True,
        during=During(PROGRESS, 1, ({"kind": "expire_tokens"},)),
        sandbox_config={"export_seconds": 1.5},  # still running when the fault lands
        expect_state="success",
        expect_logins=2,
        evidence="rejected the cached token",
    ),
    Scenario(
        id="fresh_token_rejected",
        title="401 on a freshly issued token",
        work="search",
        faults=({"kind": "status", "route": SEARCH_ROUTES, "status": 401, "count": None},),
        expect_state="failed",
        expect_logins=2,
        evidence="freshly issued token",
        max_requests={SEARCH: 2},
    ),
    Scenario(
        id="rate_limited_429",
        title="429 with Retry-After mid-report",
        work="search",
        faults=(SLOW_PAGES,),
        during=During(
            SEARCH,
            2,
            ({"kind": "status", "route": SEARCH_ROUTES, "status": 429, "retry_after": 1, "count": 1},),
        ),
        expect_state="success",
        expect_logins=1,
        evidence="answered 429",
    ),
    Scenario(
        id="burst_502_503",
        title="burst of 502 and 503 mid-report",
        work="search",
        faults=(SLOW_PAGES,),
        during=During(
            SEARCH,
            2,
            (
                {"kind": "status", "route": SEARCH_ROUTES, "status": 502, "count": 2, "retry_after": 0},
                {"kind": "status", "route": SEARCH_ROUTES, "status": 503, "count": 2, "retry_after": 0},
            ),
        ),
        expect_state="success",
        expect_logins=1,
        evidence="answered 50",
    ),
    Scenario(
        id="burst_500_ingest_wait",
        title="burst of 500 while an ingest is awaited",
        work="ingest",
        retries=0,
        sandbox_config={"ingest_seconds": 3.0},
        during=During(PROGRESS, 1, ({"kind": "status", "route": PROGRESS_ROUTES, "status": 500, "count": 3},)),
        expect_state="success",
        expect_logins=1,
        evidence="answered HTTP 500",
    ),
    Scenario(
        id="outage_500_ingest_wait_retried",
        title="500s outlast the wait; the retry's first look fails too (task retries=2)",
        work="ingest",
        retries=2,
        sandbox_config={"ingest_seconds": 3.0},  # the retries come before the end: they must adopt, not resubmit
        during=During(PROGRESS, 1, ({"kind": "status", "route": PROGRESS_ROUTES, "status": 500, "count": 6},)),
        expect_state="success",
        expect_logins=1,
        evidence="not uploading again",
    ),
    Scenario(
        id="latency_beyond_timeout_once",
        title="one answer slower than the timeout (export wait)",
        work="export",
        conn_extra={"timeout": 1},
        during=During(PROGRESS, 1, ({"kind": "latency", "route": PROGRESS_ROUTES, "seconds": 2.5, "count": 1},)),
        expect_state="success",
        expect_logins=1,
        evidence="retrying",
    ),
    Scenario(
        id="latency_beyond_timeout_always",
        title="every answer slower than the timeout",
        work="search",
        conn_extra={"timeout": 1, "max_retries": 1},
        faults=({"kind": "latency", "route": SEARCH_ROUTES, "seconds": 2.5, "count": None},),
        expect_state="failed",
        expect_logins=1,
        evidence="did not answer within 1 s",
        max_requests={SEARCH: 2},
    ),
    Scenario(
        id="reset_during_upload",
        title="connection reset during the S3 upload",
        work="ingest",
        faults=({"kind": "drop", "route": "PUT /api/s3/*", "count": 1},),
        expect_state="success",
        expect_logins=1,
        evidence="COMPLETED",
    ),
    Scenario(
        id="reset_during_download",
        title="connection reset twice during the download",
        work="export",
        faults=({"kind": "drop_after_bytes", "route": EXPORT_CONTENT, "bytes": 1000, "count": 2},),
        expect_state="success",
        expect_logins=1,
        evidence="resum",
    ),
    Scenario(
        id="ingest_failed",
        title="ingest ends FAILED",
        work="ingest",
        ingest_faults=({"outcome": "FAILED", "count": 1, "message": "virus found in scan-001.tif"},),
        expect_state="failed",
        expect_logins=1,
        evidence="ended FAILED",
    ),
    Scenario(
        id="ingest_mixed_outcome",
        title="ingest ends FINISHED_MIXED_OUTCOME",
        work="ingest",
        ingest_faults=({"outcome": "FINISHED_MIXED_OUTCOME", "count": 1, "message": "scan-002.tif: bad format"},),
        expect_state="failed",
        expect_logins=1,
        evidence="ended FINISHED_MIXED_OUTCOME",
    ),
    Scenario(
        id="refresh_token_rejected",
        title="refresh token rejected (export)",
        work="export",
        due_token=True,  # the export's first call renews the token: by refresh, which is refused
        faults=({"kind": "status", "route": REFRESH_ROUTE, "status": 401, "count": 1},),
        expect_state="success",
        expect_logins=2,  # the first, and one password login instead of the refused refresh
        evidence="rejected the refresh token",
    ),
    Scenario(
        id="refresh_raced_by_two_hosts",
        title="refresh raced by two hosts",
        work="refresh_race",
        faults=(SLOW_REFRESH,),
        expect_state="success",
        expect_logins=1,  # the one that issued the shared token; the lease holder refreshes, the other waits
        expect_refreshes=1,
        evidence="Renewed the Preservica token of",
        max_requests={REFRESH_ROUTE: 1},  # nobody presented the spent refresh token
    ),
    Scenario(
        id="refresh_raced_by_two_hosts_without_lease",
        title="refresh raced by two hosts, no login lease",
        work="refresh_race",
        conn_extra={"login_lease": False},
        faults=(RACED_REFRESHES,),
        expect_state="success",
        expect_logins=1,  # the loser's refresh is refused; it finds the winner's token in the Variable
        expect_refreshes=1,
        evidence="Another worker renewed the Preservica token first",
    ),
    Scenario(
        id="login_redirected_elsewhere",
        title="login answered 307 to another origin",
        work="search",
        faults=({"kind": "redirect", "route": LOGIN_ROUTE, "status": 307, "location": TO_ELSEWHERE},),
        expect_state="failed",
        expect_logins=0,
        evidence=REFUSED_REDIRECT,
        max_requests={LOGIN_ROUTE: 1},
    ),
    Scenario(
        id="refresh_redirected_elsewhere",
        title="refresh answered 307 to another origin (export wait)",
        work="export",
        sandbox_config={"token_lifetime": 8, "export_seconds": 6.5},  # as refresh_token_rejected
        faults=({"kind": "redirect", "route": REFRESH_ROUTE, "status": 307, "location": TO_ELSEWHERE},),
        expect_state="success",
        expect_logins=2,  # the first, and one password login instead of the refresh it would not follow
        evidence=REFUSED_REDIRECT,
    ),
    Scenario(
        id="progress_redirected_elsewhere",
        title="progress poll answered 302 to another origin (export wait)",
        work="export",
        sandbox_config={"export_seconds": 1.5},
        during=During(
            PROGRESS,
            1,
            ({"kind": "redirect", "route": PROGRESS_ROUTES, "status": 302, "location": TO_ELSEWHERE, "count": None},),
        ),
        expect_state="failed",
        expect_logins=1,
        evidence=REFUSED_REDIRECT,
    ),
    Scenario(
        id="progress_redirected_elsewhere_deferred",
        title="progress poll answered 302 to another origin (deferred export, triggerer)",
        work="export",
        deferrable=True,
        sandbox_config={"export_seconds": 1.5},
        during=During(
            PROGRESS,
            1,
            ({"kind": "redirect", "route": PROGRESS_ROUTES, "status": 302, "location": TO_ELSEWHERE, "count": None},),
        ),
        expect_state="failed",
        expect_logins=1,
        evidence=REFUSED_REDIRECT,
    ),
    Scenario(
        id="download_redirected_elsewhere",
        title="export download answered 302 to another origin",
        work="export",
        faults=({"kind": "redirect", "route": EXPORT_CONTENT, "status": 302, "location": TO_ELSEWHERE},),
        expect_state="failed",
        expect_logins=1,
        evidence=REFUSED_REDIRECT,
    ),
    Scenario(
        id="upload_redirected_elsewhere",
        title="S3 upload answered 307 to another origin",
        work="ingest",
        faults=(
            {"kind": "redirect", "route": "PUT /api/s3/*", "status": 307, "location": TO_ELSEWHERE, "count": None},
        ),
        expect_state="failed",
        expect_logins=1,
        evidence=REFUSED_REDIRECT,
    ),
    Scenario(
        id="export_failed",
        title="export ends FAILED",
        work="export",
        faults=({"kind": "fail_export", "message": "Export workflow failed: disk quota", "ref": "*", "count": 1},),
        expect_state="failed",
        expect_logins=1,
        evidence="ended FAILED: Export workflow failed: disk quota",
    ),
    *[
        Scenario(
            id=f"hostile_export_{variant}",
            title=f"hostile export: {what}",
            work="export",
            unzip=True,
            faults=({"kind": "hostile_export", "variant": variant, "ref": "*", "bytes": 1 << 30},),
            expect_state="failed",
            expect_logins=1,
            evidence=evidence,
        )
        for variant, what, evidence in (
            ("sidecar_bomb", "a sidecar that inflates to 1 GiB", "refused as a zip bomb"),
            ("lying_size", "a member inflating past its declared size", "fails its CRC"),
            ("traversal", "a '../' member (unzip_to)", "climbs out with '..'"),
            ("absolute", "an absolute member (unzip_to)", "has an absolute path"),
            ("symlink", "a symbolic-link member (unzip_to)", "is a symbolic link"),
        )
    ],
]


@dataclass
class Outcome:
    """What one scenario did, and how that compares with what it expects."""

    scenario: Scenario
    state: str
    logins: int
    refreshes: int
    lost: int | None  # after success: items missing; after failure: files not in Preservica (ingest) or None
    duplicated: int
    partial: int  # files a failed task left where its result would go
    excerpt: str
    seconds: float
    requests: dict[str, int]
    faults_fired: dict[str, int]
    problems: list[str] = field(default_factory=list)
    elsewhere: int = 0  # requests that reached the other origin (redirect scenarios)
    elsewhere_carried: list[str] = field(default_factory=list)  # which credentials they carried

    @property
    def as_expected(self) -> bool:
        return not self.problems


# ----------------------------------------------------------------------------------------------- sandbox control
def _control(base_url: str, method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{base_url}/_sandbox{path}", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def _with_user(faults: Iterable[dict[str, Any]], user: str, elsewhere: str = "") -> list[dict[str, Any]]:
    """The faults with ``{user}`` (a whole value) and ``{elsewhere}`` (within a string) filled in."""

    def filled(value: Any) -> Any:
        if value == "{user}":
            return user
        return value.replace(ELSEWHERE, elsewhere) if isinstance(value, str) else value

    return [{k: filled(v) for k, v in fault.items()} for fault in faults]


def _mentions_elsewhere(scenario: Scenario) -> bool:
    faults = (*scenario.faults, *(scenario.during.faults if scenario.during else ()))
    return any(isinstance(v, str) and ELSEWHERE in v for fault in faults for v in fault.values())


def _other_origin() -> Any:
    """A started ``OtherOrigin`` (this module runs as ``benchmarks.fault_scenarios`` and as ``fault_scenarios``)."""
    try:
        from benchmarks.other_origin import OtherOrigin
    except ImportError:
        from other_origin import OtherOrigin  # type: ignore[no-redef]
    return OtherOrigin().start()


def _route_count(requests: dict[str, int], prefix: str) -> int:
    return sum(n for route, n in requests.items() if route.startswith(prefix))


def _armed(during: During) -> list[dict[str, Any]]:
    """The ``During`` faults as the sandbox takes them: each lets ``after`` requests on the route through."""
    return [{"route": during.route + "*", **fault, "after": during.after} for fault in during.faults]


# ----------------------------------------------------------------------------------------------- the workload
def _seed_file(path: Path) -> Path:
    def assets(prefix: str, count: int) -> list[dict[str, Any]]:
        return [
            {"ref": f"{prefix}{i:07d}-0000-4000-8000-000000000000", "title": f"Fault matrix asset {i:03d}"}
            for i in range(1, count + 1)
        ]

    tree = {
        "folders": [
            {"ref": SEARCH_REF, "title": "Fault matrix: reports", "assets": assets("e", SEARCH_ASSETS)},
            {"ref": EXPORT_REF, "title": "Fault matrix: export", "assets": assets("d", EXPORT_ASSETS)},
            {"ref": INGEST_REF, "title": "Fault matrix: deliveries"},
        ]
    }
    path.write_text(json.dumps(tree), encoding="utf-8")
    return path


def _ingest_source(root: Path) -> Path:
    source = root / "delivery"
    (source / "letters").mkdir(parents=True)
    for index in range(INGEST_FILES):
        folder = source / "letters" if index % 2 else source
        (folder / f"scan-{index:03d}.tif").write_bytes(f"scan {index} ".encode() * 2000)
    return source


def build_dag(scenario: Scenario, workdir: Path) -> Any:
    """The one-task DAG of a scenario (``dag_id`` ``fault_matrix_<id>``)."""
    import pendulum
    from airflow.sdk import DAG

    common: dict[str, Any] = {
        "retries": scenario.retries,
        "retry_delay": dt.timedelta(seconds=0),
        "on_retry_callback": _record_exception,
        "on_failure_callback": _record_exception,
    }
    with DAG(
        f"fault_matrix_{scenario.id}",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        tags=["fault-matrix"],
    ) as dag:
        if scenario.work == "search":
            from airflow_provider_preservica.operators.search import PreservicaSearchOperator

            PreservicaSearchOperator(
                task_id="report",
                output_path=str(workdir / "out" / "report.csv"),
                filters={"xip.document_type": "IO"},
                parent_ref=SEARCH_REF,
                page_size=SEARCH_PAGE,
                **common,
            )
        elif scenario.work == "ingest":
            from airflow_provider_preservica.operators.ingest import PreservicaIngestOperator

            PreservicaIngestOperator(
                task_id="ingest",
                source=str(workdir / "delivery"),
                parent_ref=INGEST_REF,
                security_tag="open",
                poll_interval=0.2,
                timeout=60,
                deferrable=scenario.deferrable,
                **common,
            )
        elif scenario.work == "export":
            from airflow_provider_preservica.operators.export import PreservicaExportOperator

            PreservicaExportOperator(
                task_id="export",
                entity_ref=EXPORT_REF,
                destination=str(workdir / "out" / "export.zip"),
                poll_interval=0.2,
                timeout=60,
                min_free_bytes=0,
                deferrable=scenario.deferrable,
                unzip_to=str(workdir / "out" / "unpacked") if scenario.unzip else None,
                **common,
            )
        elif scenario.work == "refresh_race":
            from airflow.sdk import task

            @task(task_id="call_when_told", **common)
            def call_when_told() -> int:
                """Say ready, wait for the go file, then make three calls with the shared token."""
                from airflow_provider_preservica.hooks.preservica import PreservicaHook

                Path(os.environ["PRESERVICA_READY_FILE"]).touch()
                go, deadline = Path(os.environ["PRESERVICA_GO_FILE"]), time.time() + 120
                while not go.exists() and time.time() < deadline:
                    time.sleep(0.005)
                client = PreservicaHook().get_conn()
                for _ in range(3):
                    client.user_details()
                return 3

            call_when_told()
        else:
            raise ValueError(f"unknown work {scenario.work!r}")
    return dag


def serialise_dag(dag: Any) -> None:
    """Write the DAG to the metadata DB, as the DAG processor would: ``dag.test()`` runs only serialised DAGs."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.serialization.serialized_objects import LazyDeserializedDAG
    from airflow.utils.session import create_session

    with create_session() as session:
        manager = DagBundlesManager()
        manager.sync_bundles_to_db(session=session)
        bundle = next(iter(manager.get_all_dag_bundles())).name
    with create_session() as session:
        update_dag_parsing_results_in_db(
            bundle, None, [LazyDeserializedDAG.from_dag(dag)], {}, None, set(), session=session
        )


class _Recorder(logging.Handler):
    """Collects what a run says: our package's log records, and the exception of every failed try.

    Airflow prints task logs through its own logging set-up (and ``dag.test()`` under pytest goes through
    pytest's capture), so the scenario listens where it does not depend on either: a handler on the
    ``airflow_provider_preservica`` logger, and the task's ``on_retry_callback`` / ``on_failure_callback``.
    """

    active: _Recorder | None = None

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.lines: list[str] = []
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.lines.append(record.getMessage())

    @property
    def text(self) -> str:
        return "\n".join(self.lines + self.errors)

    @contextlib.contextmanager
    def listening(self) -> Iterator[_Recorder]:
        logger = logging.getLogger(PACKAGE_LOGGER)
        level = logger.level
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
        logger.addHandler(self)
        _Recorder.active = self
        try:
            yield self
        finally:
            _Recorder.active = None
            logger.removeHandler(self)
            logger.setLevel(level)


def _record_exception(context: Any) -> None:
    """``on_retry_callback`` / ``on_failure_callback``: keep the exception the try failed with."""
    recorder = _Recorder.active
    exception = context.get("exception")
    if recorder is not None and exception is not None:
        recorder.errors.append(f"{type(exception).__name__}: {exception}")


def _excerpt(recorder: _Recorder, evidence: str, failed: bool) -> str:
    """The line a user would read: the error the task failed with, else the line showing the recovery."""
    if failed and recorder.errors:
        named = [line for line in recorder.errors if evidence in line]
        return (named or recorder.errors)[-1]
    hits = [line for line in recorder.lines + recorder.errors if evidence in line]
    return hits[0] if hits else ""


_UUID = re.compile(r"\b([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")


def _short(text: str, width: int = 110) -> str:
    text = _UUID.sub(r"\1…", " ".join(text.split()).replace("|", "/"))
    return text if len(text) <= width else text[: width - 1] + "…"


# ----------------------------------------------------------------------------------------------- checks
@dataclass
class _Result:
    lost: int | None  # items missing (None: nothing to count, the task failed without output)
    duplicated: int
    partial: int  # files a failed task left in the output folder


def _outputs(workdir: Path) -> list[Path]:
    out = workdir / "out"
    return [p for p in out.rglob("*") if p.is_file() or p.is_symlink()] if out.exists() else []


def _search_result(server: SandboxServer, workdir: Path, succeeded: bool) -> _Result:
    import csv

    report = workdir / "out" / "report.csv"
    if not succeeded:
        return _Result(None, 0, len(_outputs(workdir)))
    expected = set(server.state.repository.children(SEARCH_REF))
    if not report.exists():
        return _Result(len(expected), 0, 0)
    with report.open(newline="", encoding="utf-8") as handle:
        refs = [row.get("xip.reference") or row.get("reference") or "" for row in csv.DictReader(handle)]
    return _Result(len(expected - set(refs)), len(refs) - len(set(refs)), 0)


def _ingest_result(server: SandboxServer, base_url: str) -> _Result:
    """Assets by title below the deliveries folder; a failed ingest reports how many files are not in Preservica."""
    repository = server.state.repository
    titles: Counter[str] = Counter()
    for ref in repository.descendants(INGEST_REF):
        entity = repository.get(ref)
        if entity is not None and entity.kind == "IO":
            titles[entity.title] += 1
    wanted = {f"scan-{index:03d}.tif" for index in range(INGEST_FILES)}
    ingests = len(_control(base_url, "GET", "/ingests"))
    duplicated = sum(n - 1 for n in titles.values() if n > 1) + max(0, ingests - 1)
    return _Result(len(wanted - set(titles)), duplicated, 0)


def _export_result(base_url: str, workdir: Path, succeeded: bool) -> _Result:
    jobs = _control(base_url, "GET", "/exports")
    if isinstance(jobs, dict):
        jobs = jobs.get("exports", [])
    duplicated = max(0, len(jobs) - 1)
    if not succeeded:
        return _Result(None, duplicated, len(_outputs(workdir)))
    mine = workdir / "out" / "export.zip"
    done = [job for job in jobs if job.get("status") == "COMPLETED" and job.get("path")]
    same = mine.exists() and bool(done) and Path(done[-1]["path"]).read_bytes() == mine.read_bytes()
    return _Result(0 if same else 1, duplicated, 0)


# ----------------------------------------------------------------------------------------------- refresh race
_RACE_RUNNER = """
import logging, sys
from pathlib import Path
import pendulum
from benchmarks.fault_scenarios import PACKAGE_LOGGER, build_dag, scenario_by_id
dag = build_dag(scenario_by_id(sys.argv[1]), Path(sys.argv[2]))  # imports Airflow (and its logging set-up)
handler = logging.FileHandler(sys.argv[4], encoding="utf-8")
handler.setFormatter(logging.Formatter("%(message)s"))
logger = logging.getLogger(PACKAGE_LOGGER)
logger.addHandler(handler)
logger.setLevel(logging.INFO)
run = dag.test(logical_date=pendulum.parse(sys.argv[3]))
states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
print("STATES", states)
sys.exit(0 if set(states.values()) == {"success"} else 1)
"""


def login_as_if_due(settings: PreservicaSettings, left: float) -> AccessToken:
    """Log in once; the token as if only ``left`` seconds of its lifetime were left."""
    from airflow_provider_preservica.client.auth.login import PasswordLogin
    from airflow_provider_preservica.client.auth.token import AccessToken
    from airflow_provider_preservica.client.http import HttpTransport

    transport = HttpTransport(settings.base_url)
    try:
        token = PasswordLogin(settings, transport)()
    finally:
        transport.close()
    now = time.time()
    return AccessToken(
        value=token.value,
        expires_at=now + left,
        issued_at=now + left - token.lifetime,
        fingerprint=token.fingerprint,
        refresh_token=token.refresh_token,
    )


def _seed_due_token(server: SandboxServer, user: SandboxUser) -> None:
    """Store a pair in the shared Variable as if only ``RACE_TOKEN_LEFT`` s were left."""
    from airflow.models import Variable

    from airflow_provider_preservica.connection.endpoint import build_base_url
    from airflow_provider_preservica.connection.settings import PreservicaSettings

    base_url = build_base_url(server.base_url)
    settings = PreservicaSettings(base_url, user.name, user.password, tenant=user.tenant, cache_name=CONN_ID)
    Variable.set(TOKEN_VARIABLE, login_as_if_due(settings, RACE_TOKEN_LEFT).to_json())


def _run_race(scenario: Scenario, server: SandboxServer, user: SandboxUser, workdir: Path) -> tuple[str, list[str]]:
    """Run the DAG on ``RACE_HOSTS`` simulated hosts at once; (state, what they logged and printed)."""
    import subprocess

    sync_dag_bundles()
    go = workdir / "go"
    first = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    hosts = []
    for index in range(RACE_HOSTS):
        host = workdir / f"host-{index}"
        host.mkdir(exist_ok=True)
        env = dict(
            os.environ,
            PRESERVICA_LOCK_DIR=str(host),
            PRESERVICA_GO_FILE=str(go),
            PRESERVICA_READY_FILE=str(host / "ready"),
            # The runner imports this module as benchmarks.fault_scenarios, from the repository's root.
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        )
        logical_date = (first + dt.timedelta(seconds=index)).isoformat()
        argv = [sys.executable, "-c", _RACE_RUNNER, scenario.id]
        argv += [str(workdir), logical_date, str(host / "provider.log")]
        process = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=str(workdir)
        )
        hosts.append((host, process))
    deadline = time.time() + 240
    while not all((host / "ready").exists() for host, _ in hosts):
        dead = [process for _, process in hosts if process.poll() is not None]
        if dead or time.time() > deadline:
            for _, process in hosts:
                process.kill()
            output = dead[0].communicate()[0] if dead else "(timed out)"
            return "failed", [f"a simulated host did not start: {output[-2000:]}"]
        time.sleep(0.05)
    _seed_due_token(server, user)
    go.touch()  # both hosts now find the shared token due within a few milliseconds of each other
    lines: list[str] = []
    codes = []
    for host, process in hosts:
        output = process.communicate(timeout=240)[0]
        codes.append(process.returncode)
        print(f"----- simulated worker host {host.name} -----\n{output}")  # captured, and audited, by pytest
        log = host / "provider.log"
        lines.extend(f"[{host.name}] {line}" for line in (log.read_text().splitlines() if log.exists() else []))
    return ("success" if codes == [0] * RACE_HOSTS else "failed"), lines


# ----------------------------------------------------------------------------------------------- running
def _connection(server: SandboxServer, user: SandboxUser, extra: dict[str, Any]) -> str:
    return json.dumps(
        {
            "conn_type": "preservica",
            "host": server.base_url,
            "login": user.name,
            "password": user.password,
            "extra": {"tenant": user.tenant, **extra},
        }
    )


@contextlib.contextmanager
def _output_to(path: Path | None) -> Iterator[None]:
    """Send file descriptors 1 and 2 to ``path`` (``None``: leave them), to keep Airflow's chatter off a table."""
    if path is None:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with path.open("ab") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def run_scenario(
    scenario: Scenario, server: SandboxServer, user: SandboxUser, workdir: Path | None = None, quiet: bool = False
) -> Outcome:
    """Run one scenario from a clean start (sandbox reset and re-seeded, no cached token) and judge it.

    ``quiet`` sends Airflow's console output to ``<workdir>/airflow.log`` instead of the terminal.
    """
    from airflow.models import Variable

    from airflow_provider_preservica.client.auth.cache import TokenCache

    base = server.base_url
    workdir = Path(workdir or tempfile.mkdtemp(prefix=f"fault-{scenario.id}-"))
    workdir.mkdir(parents=True, exist_ok=True)
    saved_config = _control(base, "GET", "/config")
    saved_conn = os.environ.get(CONN_ENV)
    elsewhere = _other_origin() if _mentions_elsewhere(scenario) else None
    elsewhere_url = elsewhere.base_url if elsewhere is not None else ""
    recorder = _Recorder()
    started = time.perf_counter()
    try:
        _control(base, "POST", "/reset")
        _control(base, "POST", "/seed", {"file": str(_seed_file(workdir / "seed.json"))})
        _control(base, "POST", "/config", {**SANDBOX_CONFIG, **scenario.sandbox_config})
        if scenario.work == "ingest":
            _ingest_source(workdir)
        (workdir / "out").mkdir(exist_ok=True)
        TokenCache.clear_memory()
        Variable.delete(TOKEN_VARIABLE)
        Variable.delete(LEASE_VARIABLE)
        if scenario.due_token:
            _seed_due_token(server, user)
        os.environ[CONN_ENV] = _connection(server, user, scenario.conn_extra)
        if scenario.faults:
            _control(base, "POST", "/faults", _with_user(scenario.faults, user.name, elsewhere_url))
        if scenario.during is not None:
            _control(base, "POST", "/faults", _with_user(_armed(scenario.during), user.name, elsewhere_url))
        if scenario.ingest_faults:
            _control(base, "POST", "/ingest-faults", list(scenario.ingest_faults))
        dag = build_dag(scenario, workdir)
        serialise_dag(dag)
        with recorder.listening(), _output_to(workdir / "airflow.log" if quiet else None):
            if scenario.work == "refresh_race":
                state, lines = _run_race(scenario, server, user, workdir)
                recorder.lines.extend(lines)
            else:
                dag_run = dag.test()
                states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
                state = next(iter(states.values()), "none")
        seconds = time.perf_counter() - started
    finally:
        stats = _control(base, "GET", "/stats")
        if elsewhere is not None:
            elsewhere.stop()
        _control(base, "DELETE", "/faults")
        _control(base, "DELETE", "/ingest-faults")
        _control(base, "POST", "/config", saved_config)
        TokenCache.clear_memory()
        if saved_conn is None:
            os.environ.pop(CONN_ENV, None)
        else:
            os.environ[CONN_ENV] = saved_conn

    succeeded = state == "success"
    if scenario.work == "search":
        result = _search_result(server, workdir, succeeded)
    elif scenario.work == "ingest":
        result = _ingest_result(server, base)
    elif scenario.work == "refresh_race":
        result = _Result(0 if succeeded else None, 0, 0)  # nothing to lose: the calls either all worked or not
    else:
        result = _export_result(base, workdir, succeeded)
    log = recorder.text
    outcome = Outcome(
        scenario=scenario,
        state=state,
        logins=int(stats["logins"].get(user.name, 0)),
        refreshes=int(stats.get("refreshes", {}).get(user.name, 0)),
        lost=result.lost,
        duplicated=result.duplicated,
        partial=result.partial,
        excerpt=_short(_excerpt(recorder, scenario.evidence, not succeeded)),
        seconds=seconds,
        requests={k: int(v) for k, v in stats["requests"].items()},
        faults_fired={k: int(v) for k, v in stats.get("faults_fired", {}).items()},
        elsewhere=len(elsewhere.received) if elsewhere is not None else 0,
        elsewhere_carried=elsewhere.credentials(user.password) if elsewhere is not None else [],
    )
    outcome.problems = _judge(scenario, outcome, log)
    return outcome


def _judge(scenario: Scenario, outcome: Outcome, log: str) -> list[str]:
    problems = []
    if outcome.state != scenario.expect_state:
        problems.append(f"task {outcome.state}, expected {scenario.expect_state}")
    if outcome.logins != scenario.expect_logins:
        problems.append(f"{outcome.logins} logins, expected {scenario.expect_logins}")
    if scenario.expect_refreshes is not None and outcome.refreshes != scenario.expect_refreshes:
        problems.append(f"{outcome.refreshes} refreshes, expected {scenario.expect_refreshes}")
    if scenario.evidence not in log:
        problems.append(f"neither the log nor the error says {scenario.evidence!r}")
    if outcome.state == "success" and outcome.lost:
        problems.append(f"{outcome.lost} lost")
    if outcome.partial:
        problems.append(f"the failed task left {outcome.partial} file(s) where its result would go")
    if outcome.duplicated:
        problems.append(f"{outcome.duplicated} duplicated")
    for route, limit in scenario.max_requests.items():
        sent = _route_count(outcome.requests, route)
        if sent > limit:
            problems.append(f"{sent} requests on {route}*, at most {limit} expected (a loop?)")
    if outcome.elsewhere:
        carried = ", ".join(outcome.elsewhere_carried) or "no credentials"
        problems.append(f"{outcome.elsewhere} request(s) reached the other origin, carrying {carried}")
    at_once = [f for f in scenario.faults if f is not SLOW_PAGES and f["kind"] not in ("expire_tokens", "revoke_token")]
    for fault in (*at_once, *(scenario.during.faults if scenario.during else ())):
        if not outcome.faults_fired.get(fault["kind"]):
            problems.append(f"the {fault['kind']} fault never fired (the run ended first?)")
    return problems


def scenario_by_id(scenario_id: str) -> Scenario:
    for scenario in SCENARIOS:
        if scenario.id == scenario_id:
            return scenario
    raise KeyError(scenario_id)


def markdown_table(outcomes: list[Outcome]) -> str:
    """One row per outcome (DAG outcome, logins, refreshes, lost, duplicated, verdict, excerpt); known issues below."""
    header = ["scenario", "DAG outcome", "logins", "refreshes", "lost", "duplicated", "as expected", "message excerpt"]
    rows = []
    notes = []
    for o in outcomes:
        lost = "-" if o.lost is None else str(o.lost) if o.state == "success" else f"{o.lost} (failed)"
        verdict = "yes" if o.as_expected else "NO: " + "; ".join(o.problems)
        if o.scenario.known_issue:
            notes.append(f"[{len(notes) + 1}] {o.scenario.id}: {o.scenario.known_issue}")
            verdict += f" (known issue [{len(notes)}])"
        rows.append((o.scenario.title, o.state, o.logins, o.refreshes, lost, o.duplicated, verdict, o.excerpt))
    return "\n".join([harness.markdown_table(header, "llrrrrll", rows), *(["", *notes] if notes else [])])
