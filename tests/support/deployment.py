"""A real Airflow 3 deployment on this machine: PostgreSQL, Redis, Celery and the Preservica sandbox.

One ``Deployment`` owns a fresh PostgreSQL database, a Redis DB index, a temporary ``AIRFLOW_HOME``
and these processes, each in its own process group with its log in ``<home>/logs/<name>.log``:

- the sandbox (``preservica-sandbox --port 0``),
- ``airflow api-server`` (on a free port), ``scheduler``, ``dag-processor``, ``triggerer``,
- two ``airflow celery worker`` processes with distinct Celery host names. Each worker gets its own
  ``PRESERVICA_LOCK_DIR``, so they behave like two worker *hosts*: the per-host ``flock`` of
  ``client/auth/locks.py`` does not span them and only the cross-host lease in the Airflow Variable does.

``stop()`` always kills every process tree (TERM, then KILL), flushes the Redis DB and drops the
database (after terminating its backends). Tests talk to the deployment through the REST API (runs),
the metadata database (task instance states, XComs) and the sandbox's ``/_sandbox`` control surface.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DAGS = REPO / "tests" / "distributed" / "dags"

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_DB = int(os.environ.get("PRESERVICA_DIST_REDIS_DB", "11"))
WORKERS = ("worker1", "worker2")
WORKER_CONCURRENCY = 8
SANDBOX_USER, SANDBOX_PASSWORD, SANDBOX_TENANT = "archivist", "Dist-Arch1vist-pw-5521", "SANDBOX"
TERMINAL_RUN_STATES = {"success", "failed"}


class DeploymentError(RuntimeError):
    """The deployment could not be brought up or did not behave; the message names the log to read."""


def services_missing() -> str | None:
    """Why the tier cannot run here (PostgreSQL or Redis not answering on loopback), or ``None``."""
    import psycopg2
    import redis

    try:
        psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=3).close()
    except Exception as exc:
        return f"PostgreSQL does not answer at {PG_USER}@{PG_HOST}:{PG_PORT} with trust auth ({type(exc).__name__})"
    try:
        redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB, socket_timeout=3).ping()
    except Exception as exc:
        return f"Redis does not answer at {REDIS_HOST}:{REDIS_PORT} ({type(exc).__name__})"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    """Poll ``condition`` until it returns something truthy; ``DeploymentError`` naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise DeploymentError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@dataclass
class Component:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=str(REPO),
                start_new_session=True,  # its own process group: killed as one
            )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tree(self) -> list[psutil.Process]:
        """The component and every descendant (task processes run in process groups of their own)."""
        if self.process is None:
            return []
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole tree: the process group and any descendant that left it."""
        procs = self.tree()
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(sig)

    def stop(self, grace: float = 10.0) -> None:
        procs = self.tree()
        if not procs:
            if self.process is not None:
                self.process.poll()  # reap it
            return
        self.kill(signal.SIGTERM)
        _, alive = psutil.wait_procs(procs, timeout=grace)
        for proc in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def tail(self, lines: int = 60) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])


@dataclass
class Deployment:
    home: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="preservica-distributed-")))
    db_name: str = field(default_factory=lambda: f"airflow_dist_{secrets.token_hex(4)}")
    api_port: int = field(default_factory=free_port)
    components: dict[str, Component] = field(default_factory=dict)
    sandbox_url: str = ""
    failures: int = 0  # failed tests; their logs are kept
    _api_token: str | None = None
    _db_created: bool = False

    # -- set-up -------------------------------------------------------------------------------
    @property
    def sql_alchemy_conn(self) -> str:
        return f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.db_name}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    def connection_json(self) -> str:
        return json.dumps(
            {
                "conn_type": "preservica",
                "host": self.sandbox_url,
                "login": SANDBOX_USER,
                "password": SANDBOX_PASSWORD,
                "extra": {"tenant": SANDBOX_TENANT},
            }
        )

    def base_env(self) -> dict[str, str]:
        from cryptography.fernet import Fernet

        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW", "PRESERVICA", "PYTEST", "_AIRFLOW")) and k != "PYTHONPATH"
        }
        env.update(
            {
                "AIRFLOW_HOME": str(self.home / "airflow"),
                "PYTHONPATH": str(REPO),
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
                "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__PARALLELISM": "64",
                "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "64",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
                "AIRFLOW__API__BASE_URL": self.api_url,
                "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sql_alchemy_conn,
                "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}",
                "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.db_name}",
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
                # A killed worker is noticed within ~25 s instead of 5 minutes.
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
                "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "AIRFLOW_CONN_PRESERVICA_DEFAULT": self.connection_json(),
                "PRESERVICA_SANDBOX_URL": self.sandbox_url,
                "PRESERVICA_LOCK_DIR": str(self.home / "locks" / "scheduler-host"),
            }
        )
        return env

    def start(self) -> Deployment:
        self.logs.mkdir(parents=True, exist_ok=True)
        self._reset_redis()
        self._create_database()
        self._start_sandbox()
        env = self.base_env()
        for directory in ["scheduler-host", *WORKERS]:
            (self.home / "locks" / directory).mkdir(parents=True, exist_ok=True)
        self._run(["airflow", "db", "migrate"], env, "db-migrate", timeout=300)
        airflow = str(BIN / "airflow")
        self._add("api-server", [airflow, "api-server", "--port", str(self.api_port), "--workers", "1"], env)
        self._add("scheduler", [airflow, "scheduler", "--skip-serve-logs"], env)
        self._add("dag-processor", [airflow, "dag-processor"], env)
        self._add("triggerer", [airflow, "triggerer", "--skip-serve-logs"], env)
        for name in WORKERS:
            worker_env = {**env, "PRESERVICA_LOCK_DIR": str(self.home / "locks" / name)}
            argv = [
                airflow,
                "celery",
                "worker",
                "--concurrency",
                str(WORKER_CONCURRENCY),
                "--celery-hostname",
                f"{name}@%h",
                "--skip-serve-logs",
                "--without-mingle",
                "--without-gossip",
            ]
            self._add(name, argv, worker_env)
        wait_until(self._api_ready, 180, "the api-server", interval=1)
        wait_until(self._workers_ready, 180, "both Celery workers to be ready", interval=1)
        return self

    def _add(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        component = Component(name, argv, env, self.logs / f"{name}.log")
        component.start()
        self.components[name] = component

    def _run(self, argv: list[str], env: dict[str, str], name: str, timeout: float) -> None:
        log = self.logs / f"{name}.log"
        with log.open("wb") as out:
            result = subprocess.run(
                [str(BIN / argv[0]), *argv[1:]], env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout
            )
        if result.returncode != 0:
            raise DeploymentError(f"`{' '.join(argv)}` failed ({result.returncode}); see {log}")

    def _reset_redis(self) -> None:
        import redis

        redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB).flushdb()

    def _admin(self) -> Any:
        import psycopg2

        conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres")
        conn.autocommit = True
        return conn

    def _create_database(self) -> None:
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{self.db_name}"')
            self._db_created = True
        finally:
            conn.close()

    def terminate_backends(self) -> int:
        """Close every server connection to the test database (how a PostgreSQL restart looks to clients)."""
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (self.db_name,),
                )
                row = cur.fetchone()
                return int(row[0]) if row else 0
        finally:
            conn.close()

    def _drop_database(self) -> None:
        if not self._db_created:
            return
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (self.db_name,)
                )
                cur.execute(f'DROP DATABASE IF EXISTS "{self.db_name}"')
        finally:
            conn.close()

    def _start_sandbox(self) -> None:
        log = self.logs / "sandbox.log"
        argv = [
            str(BIN / "preservica-sandbox"),
            "--port",
            "0",
            "--token-lifetime",
            "900",
            "--user",
            f"{SANDBOX_USER}:{SANDBOX_PASSWORD}:{SANDBOX_TENANT}",
        ]
        with log.open("ab") as err:
            process = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True
            )
        self.components["sandbox"] = Component("sandbox", argv, {}, log, process)
        assert process.stdout is not None
        line = process.stdout.readline().decode().strip()
        if "ready at " not in line:
            raise DeploymentError(f"the sandbox did not start (said {line!r}); see {log}")
        self.sandbox_url = line.rsplit("ready at ", 1)[1]

    def _api_ready(self) -> bool:
        self._check_alive()
        try:
            return requests.get(f"{self.api_url}/api/v2/monitor/health", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def _workers_ready(self) -> bool:
        self._check_alive()
        return all("ready." in self.components[name].tail(200) for name in WORKERS)

    def _check_alive(self) -> None:
        dead = [c for c in self.components.values() if not c.alive]
        if dead:
            raise DeploymentError(
                "these processes died: "
                + ", ".join(f"{c.name} (exit {c.process.returncode if c.process else '?'}, log {c.log})" for c in dead)
            )

    def dead_components(self) -> list[str]:
        return [c.name for c in self.components.values() if not c.alive]

    def restart(self, name: str) -> None:
        """Start a component again, as a process supervisor (systemd, Kubernetes) would."""
        component = self.components[name]
        component.stop(grace=2)
        component.restarts += 1
        component.start()

    # -- tear-down ------------------------------------------------------------------------------
    def stop(self, grace: float = 10.0) -> None:
        """Kill every process tree (TERM, then KILL after ``grace``), flush Redis, drop the database."""
        errors: list[str] = []
        procs = [proc for component in self.components.values() for proc in component.tree()]
        for component in self.components.values():
            component.kill(signal.SIGTERM)
        _, alive = psutil.wait_procs(procs, timeout=grace)
        for component in self.components.values():
            try:
                component.stop(grace=0.5)
            except Exception as exc:
                errors.append(f"{component.name}: {exc}")
        for proc in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        for step in (self._reset_redis, self._drop_database):
            try:
                step()
            except Exception as exc:
                errors.append(f"{step.__name__}: {exc}")
        if errors:
            raise DeploymentError("tear-down incomplete: " + "; ".join(errors))

    def report(self, lines: int = 40) -> str:
        """The tail of every component's log, for a failing test's output."""
        parts = [f"Deployment home {self.home}, database {self.db_name}, Redis DB {REDIS_DB}"]
        for component in self.components.values():
            parts.append(f"----- {component.name} ({component.log}) -----\n{component.tail(lines)}")
        return "\n".join(parts)

    # -- REST API -----------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        if self._api_token is None:
            response = requests.get(f"{self.api_url}/auth/token", timeout=30)
            response.raise_for_status()
            self._api_token = response.json()["access_token"]
        return {"Authorization": f"Bearer {self._api_token}"}

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(
            method, f"{self.api_url}/api/v2{path}", headers=self._headers(), timeout=60, **kwargs
        )
        if response.status_code >= 400:
            raise DeploymentError(f"{method} {path} -> {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        def parsed() -> bool:
            self._check_alive()
            response = requests.get(f"{self.api_url}/api/v2/dags/{dag_id}", headers=self._headers(), timeout=30)
            return response.status_code == 200

        wait_until(parsed, timeout, f"the dag-processor to parse {dag_id}", interval=1)

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        self.wait_for_dag(dag_id)
        run_id = f"dist__{secrets.token_hex(4)}"
        self.api(
            "POST", f"/dags/{dag_id}/dagRuns", json={"dag_run_id": run_id, "logical_date": None, "conf": conf or {}}
        )
        return run_id

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> str:
        def finished() -> str | None:
            state = self.run_state(dag_id, run_id)
            return state if state in TERMINAL_RUN_STATES else None

        return str(wait_until(finished, timeout, f"run {run_id} of {dag_id} to finish", interval=1))

    # -- metadata database ----------------------------------------------------------------------
    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        """Read the metadata DB directly (a new connection each time: backends may have been terminated)."""
        import psycopg2

        conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=self.db_name)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, tuple(params))
                return list(cur.fetchall()) if cur.description else []
        finally:
            conn.close()

    def execute(self, sql: str, params: Iterable[Any] = ()) -> None:
        import psycopg2

        conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=self.db_name)
        try:
            with conn, conn.cursor() as cur:
                cur.execute(sql, tuple(params))
        finally:
            conn.close()

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        rows = self.query("SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", (dag_id, run_id))
        return str(rows[0][0]) if rows else None

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        rows = self.query(
            "SELECT task_id, map_index, state, try_number, pid, start_date, end_date FROM task_instance "
            "WHERE dag_id = %s AND run_id = %s ORDER BY task_id, map_index",
            (dag_id, run_id),
        )
        keys = ("task_id", "map_index", "state", "try_number", "pid", "start_date", "end_date")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        """An XCom value as the task pushed it (the column is JSON; psycopg2 decodes it)."""
        rows = self.query(
            "SELECT value FROM xcom WHERE dag_id = %s AND run_id = %s AND task_id = %s AND key = %s AND map_index = %s",
            (dag_id, run_id, task_id, key, map_index),
        )
        if not rows:
            return None
        value = rows[0][0]
        return json.loads(value) if isinstance(value, bytes | bytearray) else value

    def task_log(self, dag_id: str, run_id: str, task_id: str, attempt: int) -> str:
        """The log Airflow wrote for one try of an unmapped task (empty if there is none)."""
        path = (
            self.home / "airflow" / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        ) / f"attempt={attempt}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def trigger_log(self, dag_id: str, run_id: str, task_id: str) -> str:
        """What the triggerer logged for one task's triggers (``attempt=N.log.trigger.<id>.log``)."""
        base = self.home / "airflow" / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        return "\n".join(p.read_text(errors="replace") for p in sorted(base.rglob("*.trigger.*.log")))

    # -- sandbox ----------------------------------------------------------------------------------
    def sandbox(self, method: str, path: str, body: Any = None) -> Any:
        response = requests.request(method, f"{self.sandbox_url}/_sandbox/{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def worker_running(self, pid: int) -> str | None:
        """Name of the Celery worker whose process tree holds ``pid``."""
        for name in WORKERS:
            if any(proc.pid == pid for proc in self.components[name].tree()):
                return name
        return None
