"""Benchmark DAGs: N mapped tasks that each call ``GET /api/user/details`` once, four ways.

Run by ``benchmarks/token_reuse.py`` with ``dag.test()``; the number of tasks and the sandbox account
come from environment variables that script sets before Airflow parses this file. Every task returns
its own timings as XCom, which the script reads back from the finished DagRun.

- ``preservica_bench_ours``: ``PreservicaHook`` with the shared token cache (memory -> Variable -> login).
- ``preservica_bench_ours_fresh``: the same, but each task first empties this process's token memory, as
  a task in a separate worker process would start; the token then comes from the Airflow Variable.
- ``preservica_bench_pypreservica``: what users do today: a new ``pyPreservica.EntityAPI`` per task.
- ``preservica_bench_raw``: a hand-written login with ``requests`` per task.
- ``preservica_bench_token_file``: what users' scripts do today (the "seed" style): read a token file, log in
  and rewrite the file when it is missing or expired, no locking.
- ``preservica_bench_parallel_ours``: one task that waits for a "go" file, then does what ``ours_fresh`` does and
  writes its timings to a file; ``token_reuse.py --parallel N`` runs it in N OS processes at once.
- ``preservica_bench_warmup``: one task that does nothing, run first and not measured, so that no
  variant pays for Airflow's first DAG sync and first task run.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pendulum
from airflow.sdk import DAG, task

TASKS = int(os.environ.get("PRESERVICA_BENCH_TASKS", "50"))
USER_DETAILS = "/api/user/details"


def _account() -> tuple[str, str, str, str]:
    """(base_url, username, password, tenant) of the sandbox account, exported by the benchmark script."""
    env = os.environ
    return (
        env["PRESERVICA_BENCH_URL"],
        env["PRESERVICA_BENCH_USER"],
        env["PRESERVICA_BENCH_PASSWORD"],
        env["PRESERVICA_BENCH_TENANT"],
    )


def run_ours(fresh_process: bool) -> dict[str, Any]:
    from airflow_provider_preservica.client.auth.cache import TokenCache
    from airflow_provider_preservica.hooks.preservica import PreservicaHook

    started = time.perf_counter()
    if fresh_process:
        TokenCache.clear_memory()
    hook = PreservicaHook()
    hook.settings  # noqa: B018 - read the Connection outside the auth timer: it is not authentication
    t0 = time.perf_counter()
    hook.get_token()
    auth_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    details = hook.get_conn().user_details()
    call_s = time.perf_counter() - t1
    return {
        "auth_s": auth_s,
        "login_s": auth_s,
        "call_s": call_s,
        "task_s": time.perf_counter() - started,
        "logins_here": hook.token_cache.logins,
        "user": str(details.get("user") or details.get("userName")),
    }


def run_pypreservica() -> dict[str, Any]:
    from urllib.parse import urlsplit

    from pyPreservica import EntityAPI
    from pyPreservica.common import HEADER_TOKEN

    login_s: list[float] = []

    class TimedEntityAPI(EntityAPI):
        """``EntityAPI`` unchanged, except that it also records how long its login POST takes."""

        def __token__(self) -> str:
            t = time.perf_counter()
            try:
                return super().__token__()
            finally:
                login_s.append(time.perf_counter() - t)

    base_url, username, password, tenant = _account()
    parts = urlsplit(base_url)
    started = time.perf_counter()
    t0 = time.perf_counter()
    client = TimedEntityAPI(
        username=username, password=password, tenant=tenant, server=parts.netloc, protocol=parts.scheme
    )
    auth_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    response = client.session.get(
        f"{client.protocol}://{client.server}{USER_DETAILS}", headers={HEADER_TOKEN: client.token}
    )
    response.raise_for_status()
    call_s = time.perf_counter() - t1
    client.session.close()
    client.auth_session.close()
    return {
        "auth_s": auth_s,
        "login_s": sum(login_s),
        "call_s": call_s,
        "task_s": time.perf_counter() - started,
        "logins_here": len(login_s),
        "user": str(response.json().get("user")),
    }


def run_raw() -> dict[str, Any]:
    import requests

    base_url, username, password, tenant = _account()
    started = time.perf_counter()
    with requests.Session() as session:
        t0 = time.perf_counter()
        login = session.post(
            f"{base_url}/api/accesstoken/login",
            data={"username": username, "password": password, "tenant": tenant},
            timeout=30,
        )
        login.raise_for_status()
        token = login.json()["token"]
        auth_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        response = session.get(f"{base_url}{USER_DETAILS}", headers={"Preservica-Access-Token": token}, timeout=30)
        response.raise_for_status()
        call_s = time.perf_counter() - t1
    return {
        "auth_s": auth_s,
        "login_s": auth_s,
        "call_s": call_s,
        "task_s": time.perf_counter() - started,
        "logins_here": 1,
        "user": str(response.json().get("user")),
    }


def run_token_file() -> dict[str, Any]:
    """A script's token file: reuse the token it holds while it has a minute left, else log in and rewrite it.

    No lock: tasks that find the file missing or stale at the same moment all log in, and the last to write
    wins. A 401 on the call (another script's token replaced ours? revoked?) costs one more login.
    """
    from pathlib import Path

    import requests

    base_url, username, password, tenant = _account()
    path = Path(os.environ["PRESERVICA_BENCH_TOKEN_FILE"])
    started = time.perf_counter()
    logins = 0
    login_s = 0.0

    def login(session: requests.Session) -> str:
        nonlocal logins, login_s
        t = time.perf_counter()
        answer = session.post(
            f"{base_url}/api/accesstoken/login",
            data={"username": username, "password": password, "tenant": tenant},
            timeout=30,
        )
        answer.raise_for_status()
        body = answer.json()
        expires_at = time.time() + float(body.get("validFor", 15)) * 60
        path.write_text(json.dumps({"token": body["token"], "expires_at": expires_at}), encoding="utf-8")
        logins += 1
        login_s += time.perf_counter() - t
        return str(body["token"])

    with requests.Session() as session:
        t0 = time.perf_counter()
        token = None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if float(record["expires_at"]) > time.time() + 60:
                token = str(record["token"])
        except (OSError, ValueError, KeyError, TypeError):
            token = None
        if token is None:
            token = login(session)
        auth_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        response = session.get(f"{base_url}{USER_DETAILS}", headers={"Preservica-Access-Token": token}, timeout=30)
        if response.status_code == 401:
            token = login(session)
            response = session.get(f"{base_url}{USER_DETAILS}", headers={"Preservica-Access-Token": token}, timeout=30)
        response.raise_for_status()
        call_s = time.perf_counter() - t1
    return {
        "auth_s": auth_s,
        "login_s": login_s,
        "call_s": call_s,
        "task_s": time.perf_counter() - started,
        "logins_here": logins,
        "user": str(response.json().get("user")),
    }


def wait_for_go() -> None:
    """Signal readiness, then wait until the benchmark releases every process at once (``--parallel``)."""
    ready, go = os.environ["PRESERVICA_BENCH_READY_FILE"], os.environ["PRESERVICA_BENCH_GO_FILE"]
    open(ready, "w").close()
    deadline = time.time() + 300
    while not os.path.exists(go) and time.time() < deadline:
        time.sleep(0.002)


def _benchmark_dag(dag_id: str, description: str, body: Any) -> DAG:
    with DAG(
        dag_id,
        description=description,
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        tags=["benchmark", "preservica"],
    ) as benchmark:

        @task(task_id="call_preservica")
        def call_preservica(index: int) -> dict[str, Any]:
            return body()

        call_preservica.expand(index=list(range(TASKS)))
    return benchmark


ours_dag = _benchmark_dag(
    "preservica_bench_ours", "PreservicaHook, shared token cache", lambda: run_ours(fresh_process=False)
)
ours_fresh_dag = _benchmark_dag(
    "preservica_bench_ours_fresh",
    "PreservicaHook, process memory emptied per task (token from the Variable)",
    lambda: run_ours(fresh_process=True),
)
pypreservica_dag = _benchmark_dag("preservica_bench_pypreservica", "pyPreservica EntityAPI per task", run_pypreservica)
raw_dag = _benchmark_dag("preservica_bench_raw", "requests: login + call per task", run_raw)
token_file_dag = _benchmark_dag(
    "preservica_bench_token_file", "a script's token file: read, else log in and rewrite (no lock)", run_token_file
)


with DAG(
    "preservica_bench_parallel_ours",
    description="One task per OS process, released at the same moment as the others (token_reuse.py --parallel)",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["benchmark", "preservica"],
) as parallel_ours_dag:

    @task(task_id="call_preservica")
    def call_preservica_when_told() -> dict[str, Any]:
        wait_for_go()
        result = run_ours(fresh_process=True)
        with open(os.environ["PRESERVICA_BENCH_RESULT"], "w", encoding="utf-8") as handle:
            handle.write(json.dumps(result))
        return result

    call_preservica_when_told()


with DAG(
    "preservica_bench_warmup",
    description="Not measured: warms Airflow up before the benchmark runs",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["benchmark", "preservica"],
) as warmup_dag:

    @task(task_id="warm_up")
    def warm_up() -> None:
        return None

    warm_up()
