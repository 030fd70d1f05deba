"""A private Airflow as OS processes, for the tests that need the real scheduler (``test_*_scheduler.py``).

``airflow api-server``, ``scheduler``, ``dag-processor`` and ``triggerer`` run as subprocesses of one
``AIRFLOW_HOME`` on SQLite with the LocalExecutor, each in its own process group, stopped at the end.

Waits end on a condition, never on the clock: ``Airflow.wait`` gives up only when nothing has moved for
``STALL_SECONDS`` (no run, task instance, try, trigger or asset event changed in the database), which is a
hang on any machine, however slow; a busy machine only makes each step take longer. A failed wait, a dead
component or a failed assertion prints ``Airflow.report()``: the task instances and runs as the database
holds them, then the tails of the scheduler, the task logs, the triggerer and the api-server, the most
useful first and a line each, so that a truncated CI log still shows why.

The environment (``airflow_env``) also keeps a loaded machine from failing a run outright: the task
supervisors wait up to a minute for the Execution API (Airflow's default, 5 s a request, is too short for a
fresh api-server on a busy machine: its first Execution API request takes it about 2 s on an idle machine), and a task
that does fail is retried after seconds, not after Airflow's default 300 s.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from tests.support.sandbox import connection_json
from tests.support.session import AIRFLOW_HOME

BIN = Path(sys.executable).parent
#: Nothing in the database changed for this long: the deployment hangs (one run's whole scenario takes a
#: minute or two on a busy machine; its longest quiet step, a component's start-up, under half a minute).
STALL_SECONDS = 300.0
#: Log lines worth reading in a report: warnings, errors, tracebacks' last lines, state decisions.
_SIGNIFICANT = re.compile(
    r"\[(warning|error|critical)\s*\]|^Traceback|^[\w.]+(Error|Exception|Timeout|Exit)\b|Marking (task|run)"
    r"|Executor .* reported|up_for_retry|zombie|heartbeat",
    re.IGNORECASE,
)
_NOISE = re.compile(
    r"setup plugin|Worker starting up|Deprecat|is deprecated|Variable not found|XCom not found|^\s*$|^[ _/|()\\]+$"
    r"|GET /api/v2/|GET /auth/token|/monitor/health",
)


_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT(\d\d:\d\d:\d\d\.\d\d)\d*Z?")
_LOCATION = re.compile(r"\s+loc=\S+")
_LEVEL = re.compile(r"\[(debug|info|warning|error|critical)\s+\]")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def airflow_env(sandbox: Any, home: Path, dags: Path, port: int, **extra: str) -> dict[str, str]:
    """A private Airflow's environment: SQLite, the LocalExecutor, its Preservica Connection on the sandbox."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PRESERVICA", "PYTEST", "_AIRFLOW"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db?timeout=60",  # lock wait (5 s)
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",  # allowed on SQLite in Airflow 3 (tasks use the API)
            "AIRFLOW__CORE__PARALLELISM": "4",  # the LocalExecutor forks this many workers at start (default 32)
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__FERNET_KEY": "5bVSQmY6mzQ0aOJQy8b3bR1QhXdY0vYk7b8yV3xEJ0A=",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            # A task whose supervisor gave up on the api-server fails before it starts and, with retries left
            # (the example ingest has 2), waited Airflow's default 300 s for its next try.
            "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "2",
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW_CONN_PRESERVICA_DEFAULT": connection_json(sandbox),
        }
    )
    env.update(extra)
    return env


def migrated_database(env: dict[str, str]) -> Path:
    """An empty metadata database that ``airflow db migrate`` built once for this test session, in WAL mode.

    Every private Airflow of the session starts from a copy of it: the migration (an ``airflow`` command start-up
    and every table of the schema) is the same each time, and copying the file takes milliseconds. WAL: readers
    never block the writer (four processes share the file). Built with ``env``'s Airflow settings, in a home of
    its own next to the session's (``tests/conftest.py``); the file holds no home-specific path.
    """
    template = AIRFLOW_HOME.parent / "migrated-airflow-home"
    database = template / "airflow.db"
    if not database.exists():
        template.mkdir(exist_ok=True)
        home = {
            "AIRFLOW_HOME": str(template),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{database}?timeout=60",
        }
        with (template / "db-migrate.log").open("wb") as out:
            result = subprocess.run(
                [str(BIN / "airflow"), "db", "migrate"], env={**env, **home}, stdout=out, stderr=subprocess.STDOUT
            )
        assert result.returncode == 0, f"airflow db migrate failed; see {template / 'db-migrate.log'}"
        with contextlib.closing(sqlite3.connect(database)) as db:
            db.execute("PRAGMA journal_mode=WAL")
    return database


class Airflow:
    """One private Airflow: its home, its processes (one process group each) and its REST API."""

    COMPONENTS = {
        "api-server": ["api-server", "--port", "{port}"],
        "scheduler": ["scheduler", "--skip-serve-logs"],
        "dag-processor": ["dag-processor"],
        "triggerer": ["triggerer", "--skip-serve-logs"],
    }

    def __init__(self, root: Path, env: dict[str, str], port: int) -> None:
        self.root, self.env, self.port = root, env, port
        self.home = Path(env["AIRFLOW_HOME"])
        self.url = f"http://127.0.0.1:{port}"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.phases: dict[str, float] = {}  # what took how long, in the report and printed by the tests
        self._token: str | None = None

    # -- processes ----------------------------------------------------------------------------------------
    def migrate(self) -> None:
        """A migrated metadata database in WAL mode: a copy of the session's one (see ``migrated_database``)."""
        shutil.copyfile(migrated_database(self.env), self.home / "airflow.db")

    def start(self, *only: str) -> None:
        """Start every component (the api-server first), or only those named (a restart after ``kill``).

        The api-server must answer before the scheduler starts: the scheduler queues a cron run's first task at
        once, and a task whose supervisor cannot reach the Execution API in its five tries fails before it
        starts (on a busy machine the api-server took up to 30 s to answer its first request).
        """
        if not only:
            self.start("api-server")
            self.wait(self.answering, "the api-server to answer")
            only = tuple(name for name in self.COMPONENTS if name != "api-server")
        for name in only:
            with (self.root / f"{name}.log").open("ab") as out:  # a restarted component appends
                self.processes[name] = subprocess.Popen(
                    [str(BIN / "airflow"), *(a.format(port=self.port) for a in self.COMPONENTS[name])],
                    env=self.env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )

    def kill(self, name: str) -> None:
        """SIGKILL one component's process group, as a crash would (no clean shutdown)."""
        process = self.processes.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def check_alive(self) -> None:
        dead = {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}
        assert not dead, f"Airflow components died: {dead}"

    def stop(self) -> None:
        """SIGTERM, then SIGKILL for what is left after 3 s (the triggerer's clean-up alone takes 10 s)."""
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 3
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the group: task processes and anything left
            process.wait(timeout=10)

    # -- waiting on a condition -----------------------------------------------------------------------------
    def wait(self, condition: Callable[[], Any], what: str) -> Any:
        """``condition()``'s first truthy value; fails only once nothing has moved for ``STALL_SECONDS``."""
        began = last_move = time.monotonic()
        seen = self.progress()
        while True:
            self.check_alive()
            result = condition()
            if result:
                self.phases[what] = time.monotonic() - began
                return result
            now = self.progress()
            if now != seen:
                seen, last_move = now, time.monotonic()
            elif time.monotonic() - last_move > STALL_SECONDS:
                raise AssertionError(
                    f"waiting for {what}: nothing moved in Airflow for {STALL_SECONDS:.0f} s "
                    f"({time.monotonic() - began:.0f} s in all)"
                )
            time.sleep(1)

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows straight from the metadata database (read-only; WAL readers never wait for the writer)."""
        try:
            with contextlib.closing(
                sqlite3.connect(f"file:{self.home / 'airflow.db'}?mode=ro", uri=True, timeout=10)
            ) as db:
                return db.execute(sql).fetchall()
        except sqlite3.Error as exc:
            return [(f"(database not readable: {exc})",)]

    def progress(self) -> tuple[Any, ...]:
        """What moves while Airflow works: runs, task instances and their tries, triggers, asset events."""
        return (
            tuple(self._query("SELECT run_id, state FROM dag_run ORDER BY id")),
            tuple(self._query("SELECT id, state, try_number FROM task_instance ORDER BY id")),
            tuple(self._query("SELECT id FROM trigger ORDER BY id")),
            tuple(self._query("SELECT count(*) FROM asset_event")),
        )

    # -- the report ----------------------------------------------------------------------------------------
    def report(self) -> str:
        """The deployment's state and its logs' most telling lines, compact: the part a truncated CI log keeps."""
        parts = [f"===== Airflow in {self.root} (phases: {self._phases()})", self._states()]
        parts += [_section("scheduler.log", self.root / "scheduler.log", significant=20, last=8)]
        parts += self._task_logs()
        parts += [_section("triggerer.log", self.root / "triggerer.log", significant=8, last=6)]
        parts += [_section("api-server.log", self.root / "api-server.log", significant=6, last=4)]
        parts += [_section("dag-processor.log", self.root / "dag-processor.log", significant=4, last=0)]
        return "\n".join(part for part in parts if part)

    def _phases(self) -> str:
        return ", ".join(f"{what} {seconds:.0f} s" for what, seconds in self.phases.items()) or "none finished"

    def _states(self) -> str:
        lines = ["--- runs and task instances (database)"]
        runs = self._query("SELECT dag_id, run_id, run_type, state FROM dag_run ORDER BY id")
        tis = self._query(
            "SELECT dag_id, run_id, task_id, map_index, state, try_number, max_tries, start_date, end_date, "
            "next_method FROM task_instance ORDER BY coalesce(start_date, updated_at)"
        )
        for run in runs:
            if len(run) != 4:
                return "\n".join([*lines, *map(str, run)])
            dag_id, run_id, run_type, state = run
            lines.append(f"{dag_id} {run_id} ({run_type}): {state}")
            for ti in tis:
                if ti[:2] == (dag_id, run_id):
                    task, index, ti_state, tries, max_tries, start, end, deferred = ti[2:]
                    task += f"[{index}]" if index is not None and index >= 0 else ""
                    span = f"{_clock(start)}-{_clock(end)}" if start else "not started"
                    note = f" (resumes {deferred})" if deferred and ti_state == "deferred" else ""
                    lines.append(f"  {task}: {ti_state} try {tries}/{max_tries + 1} {span}{note}")
        triggers = self._query("SELECT id, classpath, triggerer_id FROM trigger ORDER BY id")
        lines += [f"  trigger {t[0]} {str(t[1]).rsplit('.', 1)[-1]} on triggerer {t[2]}" for t in triggers]
        return "\n".join(lines)

    def _task_logs(self) -> list[str]:
        """The logs of the tries that did not succeed (failed, retried, still running), else the latest two."""
        states = {
            (dag, run, task, str(index)): (state, tries)
            for dag, run, task, index, state, tries in self._query(
                "SELECT dag_id, run_id, task_id, map_index, state, try_number FROM task_instance"
            )
        }
        logs = sorted((self.home / "logs").glob("dag_id=*/run_id=*/**/attempt=*.log*"), key=_mtime)
        telling = []
        for log in logs:
            keys = dict(part.split("=", 1) for part in log.relative_to(self.home / "logs").parts if "=" in part)
            attempt = int(keys.get("attempt", "0").split(".", 1)[0] or 0)
            key = (keys.get("dag_id"), keys.get("run_id"), keys.get("task_id"), keys.get("map_index", "-1"))
            state, tries = states.get(key, (None, attempt))
            if state not in ("success", "skipped") or attempt < (tries or 0):
                telling.append(log)
        chosen = (telling or logs[-2:])[-4:]
        root = self.home / "logs"
        return [_section(_short(log, root), log, significant=4, last=6, json_lines=True) for log in chosen]

    # -- the REST API ----------------------------------------------------------------------------------------
    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        if self._token is None:
            response = requests.get(f"{self.url}/auth/token", timeout=60)
            response.raise_for_status()
            self._token = response.json()["access_token"]
        for attempt in range(4):
            response = requests.request(
                method,
                f"{self.url}/api/v2{path}",
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=60,
                **kwargs,
            )
            # SQLite has one writer at a time: a request that waited out the lock gets a 500 and changed nothing.
            if response.status_code < 500 or attempt == 3:
                break
            time.sleep(1)
        if response.status_code == 409 and attempt and method == "POST":
            return None  # an earlier attempt did land after all
        assert response.status_code < 400, f"{method} {path} -> {response.status_code}: {response.text[:500]}"
        return response.json() if response.content else None

    def answering(self) -> bool:
        try:
            return requests.get(f"{self.url}/api/v2/monitor/health", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def healthy(self) -> bool:
        try:
            health = requests.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
        except (requests.RequestException, ValueError):
            return False
        return all(health.get(part, {}).get("status") == "healthy" for part in ("metadatabase", "scheduler"))

    def dag_parsed(self, dag_id: str) -> bool:
        try:
            return bool(self.api("GET", f"/dags/{dag_id}"))
        except AssertionError:
            return False

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return list(self.api("GET", f"/dags/{dag_id}/dagRuns")["dag_runs"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        tis = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {ti["task_id"] + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else ""): ti["state"] for ti in tis}

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
        return self.api("GET", path, params={"map_index": map_index, "deserialize": True})["value"]


def reporting(af: Airflow, scenario: Callable[[], None]) -> None:
    """Run ``scenario``; if it fails in any way (a hang included), print ``af.report()`` first."""
    try:
        scenario()
    except BaseException:
        print(af.report())
        raise


# -- log reading -------------------------------------------------------------------------------------------
def _section(title: str, path: Path, *, significant: int, last: int, json_lines: bool = False) -> str:
    """A log's last ``significant`` telling lines, then its last ``last`` lines (each once), 200 characters each."""
    try:
        raw = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"--- {title}: {exc}"
    lines = [_compact(_json_line(line) if json_lines else line) for line in raw]
    lines = [line for line in lines if not _NOISE.search(line)]
    picked = [i for i, line in enumerate(lines) if _SIGNIFICANT.search(line)][-significant:] if significant else []
    chosen = sorted(set(picked) | set(range(max(0, len(lines) - last), len(lines))))
    if not chosen:
        return f"--- {title}: empty" if not lines else ""
    return "\n".join([f"--- {title}", *(lines[i][:200] for i in chosen)])


def _compact(line: str) -> str:
    """``13:00:22.07 [warning] message [logger]``: no date, no source location, single spaces."""
    line = _TIMESTAMP.sub(r"\1", line)
    return " ".join(_LEVEL.sub(r"[\1]", _LOCATION.sub("", line)).split())


def _json_line(line: str) -> str:
    """A task log line (JSON in Airflow 3) as ``time level event``, with an exception's type and message."""
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict):
        return line
    text = f"{str(record.get('timestamp', ''))[11:22]} [{record.get('level', '')}] {record.get('event', '')}"
    for error in record.get("error_detail") or []:
        if isinstance(error, dict):
            text += f" | {error.get('exc_type')}: {error.get('exc_value')}"
    return " ".join(text.split())


def _short(log: Path, root: Path) -> str:
    return "/".join(part.split("=", 1)[-1] for part in log.relative_to(root).parts)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _clock(value: Any) -> str:
    """``HH:MM:SS`` of a database timestamp, or ``-``."""
    return str(value)[11:19] if value else "-"
