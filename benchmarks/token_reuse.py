"""Logins and authentication time for N Airflow tasks that each call Preservica once.

One run compares four ways of doing the same work, each as a DAG of N mapped tasks run with
``dag.test()`` on a throwaway Airflow home (SQLite) against the local Preservica sandbox:

- ours, same process: ``PreservicaHook().get_conn().user_details()`` with the shared token cache;
- ours, fresh process per task: the same, but every task first empties the in-process token memory
  (``TokenCache.clear_memory()``), as separate worker processes would start, so the token comes from
  the Airflow Variable;
- pyPreservica per task: ``pyPreservica.EntityAPI(...)`` (its constructor logs in and reads the server
  version and the user details), then ``GET /api/user/details``;
- raw requests per task: ``POST /api/accesstoken/login``, then ``GET /api/user/details``;
- seed-style token file: what users' scripts do today: read a token file, log in and rewrite it when it is
  missing or expired (a minute of margin), no locking; a 401 costs one more login.

``dag.test()`` runs the mapped tasks one after the other, so the DAG runs above are sequential. ``--parallel N``
(default 8, 0 = skip) adds the case that matters on a real deployment: N OS processes, each released at the
same moment (a "go" file) after a cold start, for ours (each process runs a one-task DAG with ``dag.test()``
on the shared SQLite database, so the token goes through the Airflow Variable and the host lock), the token
file and pyPreservica. Logins come from the sandbox; auth time is the sum over processes.

The sandbox runs with added latency on the login route (``--login-latency``, default 50 ms), as a
real Preservica login costs far more than a loopback round trip. Logins and requests are the
sandbox's own counters; timings come from each task's XCom return value.

    .venv/bin/python -m benchmarks.token_reuse --tasks 50 [--parallel 8] [--json results.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import harness
from benchmarks.common import _prepare_environment

HERE = Path(__file__).resolve().parent
DAGS = HERE / "dags"
DAG_FILE = DAGS / "token_reuse_dag.py"
CONN_ID = "preservica_default"
TOKEN_VARIABLE = f"preservica_access_token__{CONN_ID}"
USER = {"name": "bench-robot", "password": "B3nch-R0bot-pw-2026", "tenant": "BENCH"}
USER_DETAILS_ROUTE = "GET /api/user/details"
LOGIN_ROUTE = "POST /api/accesstoken/login"

VARIANTS: list[tuple[str, str, str]] = [
    # (key, label, attribute of the DAG module)
    ("ours", "ours, same process", "ours_dag"),
    ("ours_fresh", "ours, fresh process per task", "ours_fresh_dag"),
    ("pypreservica", "pyPreservica per task", "pypreservica_dag"),
    ("raw", "raw requests login per task", "raw_dag"),
    ("token_file", "seed-style token file", "token_file_dag"),
]
# (key, label) of the --parallel contenders
PARALLEL: list[tuple[str, str]] = [
    ("ours", "ours (Variable + host lock)"),
    ("token_file", "seed-style token file"),
    ("pypreservica", "pyPreservica per process"),
]
CHILD = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("preservica_token_reuse_dag", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
if sys.argv[2] == "ours":
    import pendulum
    run = module.parallel_ours_dag.test(logical_date=pendulum.parse(sys.argv[4]))
    sys.exit(0 if {str(ti.state) for ti in run.get_task_instances()} == {"success"} else 1)
body = {"token_file": module.run_token_file, "pypreservica": module.run_pypreservica}[sys.argv[2]]
module.wait_for_go()
result = body()
open(sys.argv[3], "w").write(json.dumps(result))
"""


@dataclass
class VariantResult:
    key: str
    label: str
    tasks: int
    succeeded: int
    logins: int
    requests: int
    requests_by_route: dict[str, int]
    auth_total_s: float
    auth_mean_s: float
    auth_median_s: float
    login_post_total_s: float
    call_mean_s: float
    task_body_total_s: float
    run_wall_s: float
    per_task: list[dict[str, Any]] = field(default_factory=list)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = harness.parser(__doc__, keep="the temporary Airflow home (for inspection)")
    parser.add_argument("--tasks", type=int, default=50, help="mapped tasks per DAG run (default 50)")
    parser.add_argument(
        "--login-latency",
        type=float,
        default=0.05,
        help="seconds the sandbox adds to every POST /api/accesstoken/login (default 0.05)",
    )
    parser.add_argument(
        "--parallel", type=int, default=8, help="OS processes released at once per contender (default 8, 0 = skip)"
    )
    parser.add_argument("--per-task", action="store_true", help="include every task's timings in the JSON")
    args = parser.parse_args(argv)
    if args.tasks < 1:
        parser.error("--tasks must be at least 1")
    if args.login_latency < 0:
        parser.error("--login-latency must be >= 0")
    return args


def _prepare_token_environment(tmp: Path, tasks: int) -> None:
    """Airflow's configuration (read at import time) and the task count and token file the DAGs read."""
    _prepare_environment(tmp, database=True, dags_folder=DAGS)
    os.environ["PRESERVICA_BENCH_TASKS"] = str(tasks)
    os.environ["PRESERVICA_BENCH_TOKEN_FILE"] = str(tmp / "preservica-token.json")


def _latency_fault(seconds: float) -> dict[str, Any]:
    """The sandbox fault (``/_sandbox/faults`` format) that slows every login by ``seconds``."""
    return {"kind": "latency", "route": LOGIN_ROUTE, "seconds": seconds, "count": None}


def _control(base_url: str, method: str, path: str, body: Any = None) -> Any:
    """Call the sandbox's ``/_sandbox`` control surface (never counted, never faulted)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{base_url}/_sandbox{path}", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def _load_dag_module() -> Any:
    spec = importlib.util.spec_from_file_location("preservica_token_reuse_dag", DAG_FILE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _task_results(dag_run: Any) -> tuple[int, list[dict[str, Any]]]:
    """Successful task count and each task's XCom return value, read back from the metadata DB."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    tis = dag_run.get_task_instances()
    succeeded = sum(1 for ti in tis if str(ti.state) == "success")
    with create_session() as session:
        rows = session.scalars(
            XComModel.get_many(run_id=dag_run.run_id, key="return_value", dag_ids=dag_run.dag_id)
        ).all()
        values = [(row.map_index, XComModel.deserialize_value(row)) for row in rows]
    return succeeded, [dict(value, map_index=index) for index, value in sorted(values, key=lambda item: item[0])]


def _run_variant(key: str, label: str, dag: Any, base_url: str, latency: float, tasks: int) -> VariantResult:
    from airflow.models import Variable

    from airflow_provider_preservica.client.auth.cache import TokenCache

    # A cold start for every variant: no token anywhere, fresh counters, the login latency in place.
    _control(base_url, "POST", "/reset")
    if latency > 0:
        _control(base_url, "POST", "/faults", _latency_fault(latency))
    TokenCache.clear_memory()
    Variable.delete(TOKEN_VARIABLE)
    Path(os.environ["PRESERVICA_BENCH_TOKEN_FILE"]).unlink(missing_ok=True)

    started = time.perf_counter()
    dag_run = dag.test()
    run_wall_s = time.perf_counter() - started

    stats = _control(base_url, "GET", "/stats")
    succeeded, per_task = _task_results(dag_run)
    if succeeded != tasks or len(per_task) != tasks:
        raise RuntimeError(f"{label}: {succeeded}/{tasks} tasks succeeded, {len(per_task)} results")
    auth = [float(r["auth_s"]) for r in per_task]
    logins = int(sum(stats["logins"].values()))
    seen_by_tasks = sum(int(r["logins_here"]) for r in per_task)
    if seen_by_tasks != logins:
        raise RuntimeError(f"{label}: the sandbox counted {logins} logins, the tasks {seen_by_tasks}")
    routes = {route: int(n) for route, n in sorted(stats["requests"].items())}
    if routes.get(USER_DETAILS_ROUTE, 0) < tasks:
        raise RuntimeError(f"{label}: only {routes.get(USER_DETAILS_ROUTE, 0)} calls of {USER_DETAILS_ROUTE}")
    return VariantResult(
        key=key,
        label=label,
        tasks=tasks,
        succeeded=succeeded,
        logins=logins,
        requests=sum(routes.values()),
        requests_by_route=routes,
        auth_total_s=sum(auth),
        auth_mean_s=statistics.fmean(auth),
        auth_median_s=statistics.median(auth),
        login_post_total_s=sum(float(r["login_s"]) for r in per_task),
        call_mean_s=statistics.fmean(float(r["call_s"]) for r in per_task),
        task_body_total_s=sum(float(r["task_s"]) for r in per_task),
        run_wall_s=run_wall_s,
        per_task=per_task,
    )


@dataclass
class ParallelResult:
    key: str
    label: str
    processes: int
    succeeded: int
    logins: int
    auth_total_s: float
    auth_max_s: float
    wall_s: float


def _run_parallel(key: str, label: str, processes: int, base_url: str, latency: float, tmp: Path) -> ParallelResult:
    """``processes`` OS processes, all released at once after a cold start (no token anywhere)."""
    import subprocess

    from airflow.models import Variable

    _control(base_url, "POST", "/reset")
    if latency > 0:
        _control(base_url, "POST", "/faults", _latency_fault(latency))
    Variable.delete(TOKEN_VARIABLE)
    Path(os.environ["PRESERVICA_BENCH_TOKEN_FILE"]).unlink(missing_ok=True)
    work = tmp / f"parallel-{key}"
    work.mkdir()
    go = work / "go"
    workers = []
    # One process at a time up to the "go" line: Airflow's start-up writes to the SQLite metadata DB, and eight
    # processes doing that at once fail with "database is locked". They then wait, all ready, for the go file.
    for index in range(processes):
        ready, result = work / f"ready-{index}", work / f"result-{index}.json"
        env = dict(
            os.environ,
            PRESERVICA_BENCH_READY_FILE=str(ready),
            PRESERVICA_BENCH_GO_FILE=str(go),
            PRESERVICA_BENCH_RESULT=str(result),
        )
        date = (dt.datetime(2026, 2, 1, tzinfo=dt.timezone.utc) + dt.timedelta(minutes=index)).isoformat()
        log_path = work / f"log-{index}.txt"
        command = [sys.executable, "-c", CHILD, str(DAG_FILE), key, str(result), date]
        with log_path.open("wb") as log:
            proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        workers.append((ready, result, proc))
        deadline = time.time() + 300
        while not ready.exists():
            if proc.poll() is not None or time.time() > deadline:
                for _, _, other in workers:
                    other.kill()
                tail = log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
                raise RuntimeError(f"{label}: process {index} died or hung before the start:\n{tail}")
            time.sleep(0.02)
    started = time.perf_counter()
    go.touch()
    for _, _, proc in workers:
        proc.wait(timeout=600)
    wall_s = time.perf_counter() - started
    results = [json.loads(result.read_text()) for _, result, _ in workers if result.exists()]
    stats = _control(base_url, "GET", "/stats")
    auth = [float(r["auth_s"]) for r in results] or [0.0]
    return ParallelResult(
        key=key,
        label=label,
        processes=processes,
        succeeded=len(results),
        logins=int(sum(stats["logins"].values())),
        auth_total_s=sum(auth),
        auth_max_s=max(auth),
        wall_s=wall_s,
    )


def _parallel_report(results: list[ParallelResult]) -> str:
    if not results:
        return ""
    header = f"{'contender':<30} {'processes':>9} {'ok':>3} {'logins':>6} {'auth total s':>12} {'auth max ms':>11}"
    lines = [
        "",
        f"Parallel: {results[0].processes} OS processes released at the same moment, cold start (no token anywhere)",
        "",
        header,
        "-" * len(header),
    ]
    for r in results:
        lines.append(
            f"{r.label:<30} {r.processes:>9} {r.succeeded:>3} {r.logins:>6} {r.auth_total_s:>12.3f} "
            f"{r.auth_max_s * 1000:>11.1f}"
        )
    return "\n".join(lines)


def _machine() -> dict[str, Any]:
    import airflow
    import pyPreservica

    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "airflow": airflow.__version__,
        "pypreservica": pyPreservica.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
    }


def _ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.3g}" if denominator else "n/a"


def _report(results: list[VariantResult], machine: dict[str, Any], latency: float) -> str:
    tasks = results[0].tasks
    header = (
        f"{'variant':<30} {'logins':>6} {'requests':>8} {'auth total s':>12} {'auth mean ms':>12} "
        f"{'auth p50 ms':>11} {'call mean ms':>12} {'run wall s':>10}"
    )
    lines = [
        f"Token reuse: {tasks} Airflow tasks (dag.test, SQLite), each calling {USER_DETAILS_ROUTE} once",
        f"Sandbox: login latency fault {latency * 1000:.0f} ms on POST /api/accesstoken/login "
        "(count: null = every login), token lifetime 900 s",
        f"Machine: {machine['cpus']} CPUs, Python {machine['python']}, Airflow {machine['airflow']}, "
        f"pyPreservica {machine['pypreservica']}, {machine['platform']}, {machine['date']}",
        "",
        header,
        "-" * len(header),
    ]
    for r in results:
        lines.append(
            f"{r.label:<30} {r.logins:>6} {r.requests:>8} {r.auth_total_s:>12.3f} {r.auth_mean_s * 1000:>12.2f} "
            f"{r.auth_median_s * 1000:>11.2f} {r.call_mean_s * 1000:>12.2f} {r.run_wall_s:>10.2f}"
        )
    by_key = {r.key: r for r in results}
    py = by_key["pypreservica"]
    lines.append("")
    lines.append("Ratios (ours / pyPreservica per task):")
    for key in ("ours", "ours_fresh"):
        r = by_key[key]
        lines.append(
            f"  {r.label:<30} logins {r.logins}/{py.logins} = {_ratio(r.logins, py.logins)}, "
            f"auth time {_ratio(r.auth_total_s, py.auth_total_s)}, requests {_ratio(r.requests, py.requests)}, "
            f"run wall {_ratio(r.run_wall_s, py.run_wall_s)}"
        )
    tf = by_key.get("token_file")
    if tf is not None:
        lines.append("Ratios (ours / seed-style token file):")
        for key in ("ours", "ours_fresh"):
            r = by_key[key]
            lines.append(
                f"  {r.label:<30} logins {r.logins}/{tf.logins} = {_ratio(r.logins, tf.logins)}, "
                f"auth time {_ratio(r.auth_total_s, tf.auth_total_s)}, run wall {_ratio(r.run_wall_s, tf.run_wall_s)}"
            )
    lines += [
        "",
        "Auth time = time inside token acquisition, summed over tasks: ours = hook.get_token() (Connection "
        "already read);",
        f"pyPreservica = the EntityAPI constructor (login + version + user details; its login POST alone: "
        f"{py.login_post_total_s:.3f} s total); raw = the login POST; token file = reading the file, plus the login "
        "POST and the rewrite when it is missing or stale.",
        "Call mean = the GET /api/user/details after authentication (ours: includes building the hook's REST "
        "client and opening its connection).",
        "Run wall = the whole dag.test() call, Airflow's own scheduling and bookkeeping included (after one "
        "unmeasured warm-up run). The sandbox runs in the same process.",
        "",
        "Requests by route:",
    ]
    lines += [f"  {r.label:<30} " + ", ".join(f"{k} {v}" for k, v in r.requests_by_route.items()) for r in results]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    total_started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="preservica-bench-"))
    _prepare_token_environment(tmp, args.tasks)
    # Airflow's in-process execution API client warns about starlette's httpx test client; not ours to fix.
    warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient.*")
    sandbox = None
    try:
        from airflow.utils import db
        from preservica_sandbox import SandboxServer, SandboxUser

        db.resetdb()
        user = SandboxUser(name=USER["name"], password=USER["password"], tenant=USER["tenant"])
        sandbox = SandboxServer(users=[user], token_lifetime=900).start()
        os.environ.update(
            {
                "PRESERVICA_BENCH_URL": sandbox.base_url,
                "PRESERVICA_BENCH_USER": user.name,
                "PRESERVICA_BENCH_PASSWORD": user.password,
                "PRESERVICA_BENCH_TENANT": user.tenant,
                f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(
                    {
                        "conn_type": "preservica",
                        "host": sandbox.base_url,
                        "login": user.name,
                        "password": user.password,
                        "extra": {"tenant": user.tenant},
                    }
                ),
            }
        )
        module = _load_dag_module()
        # Import what the tasks import and run one no-op DAG first, so that no variant pays for the first
        # import, Airflow's first DAG sync or its first task run on behalf of the others.
        import pyPreservica  # noqa: F401
        import requests  # noqa: F401

        import airflow_provider_preservica.hooks.preservica  # noqa: F401

        module.warmup_dag.test()

        results = [
            _run_variant(key, label, getattr(module, attribute), sandbox.base_url, args.login_latency, args.tasks)
            for key, label, attribute in VARIANTS
        ]
        parallel = [
            _run_parallel(key, label, args.parallel, sandbox.base_url, args.login_latency, tmp)
            for key, label in (PARALLEL if args.parallel > 0 else [])
        ]
    finally:
        if sandbox is not None:
            sandbox.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    machine = _machine()
    print(_report(results, machine, args.login_latency))
    print(_parallel_report(parallel))
    total_s = harness.conclude(args, total_started, note="Airflow DB reset included")
    harness.write_json(
        args.json,
        {
            "benchmark": "token_reuse",
            "tasks": args.tasks,
            "endpoint": USER_DETAILS_ROUTE,
            "sandbox": {
                "token_lifetime_s": 900,
                "faults": [_latency_fault(args.login_latency)] if args.login_latency > 0 else [],
            },
            "machine": machine,
            "total_s": total_s,
            "results": [{k: v for k, v in asdict(r).items() if args.per_task or k != "per_task"} for r in results],
            "parallel": [asdict(r) for r in parallel],
        },
    )
    return 0


if __name__ == "__main__":
    harness.run(main)
