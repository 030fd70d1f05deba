"""Worker slot-seconds spent waiting for a long ingest: polling (``deferrable=False``) vs deferrable.

The same ``PreservicaIngestOperator`` task (a small folder packaged as OPEX, uploaded, then awaited) runs twice
with ``dag.test()`` on a throwaway Airflow home (SQLite) against the local Preservica sandbox, whose ingest
takes ``--ingest-seconds`` T (``/_sandbox/config`` ``ingest_seconds``; default 300, ``--quick`` 10):

- polling: ``execute()`` builds, uploads, then polls the progress token every ``--poll-interval`` seconds
  until COMPLETED, all inside the worker slot;
- deferrable: ``execute()`` builds, uploads and defers; the trigger polls in the triggerer; then
  ``execute_complete()`` reads the outcome, verifies the assets and returns the report.

How slot time is counted: a worker slot is held while the task instance runs on a worker, that is while
``execute()`` or ``execute_complete()`` is running (each try, each resumption). This script wraps both methods
of the operator class in this process and sums the wall time spent inside them (``execute()`` until it returns
or raises, ``TaskDeferred`` included). The time between the deferral and ``execute_complete()`` is the trigger's
wait: it holds no worker slot, only a coroutine in the triggerer's event loop (one process serves hundreds of
triggers); it is reported separately, with the number of progress polls each mode sent. Task start-up and
Airflow's own bookkeeping (the same in both modes, a second or two per try) are not slot time here; ``dag.test``
runs the trigger in-process, so "run wall" includes the trigger's wait.

    .venv/bin/python -m benchmarks.slot_seconds [--ingest-seconds 300] [--poll-interval 5] [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks import harness
from benchmarks.common import _prepare_environment

PARENT_REF = "f0000000-0000-4000-8000-0000000000a1"


@dataclass
class ModeResult:
    mode: str
    state: str
    slot_s: float  # inside execute() + execute_complete()
    execute_s: float
    execute_complete_s: float
    trigger_wait_s: float  # between the deferral and execute_complete()
    run_wall_s: float
    progress_polls: int
    logins: int


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = harness.parser(__doc__)
    parser.add_argument("--ingest-seconds", type=float, default=None, help="sandbox ingest duration T (default 300)")
    parser.add_argument("--poll-interval", type=float, default=None, help="seconds between polls, both modes (5)")
    parser.add_argument("--quick", action="store_true", help="T = 10 s, poll every 1 s")
    args = parser.parse_args(argv)
    if args.ingest_seconds is None:
        args.ingest_seconds = 10.0 if args.quick else 300.0
    if args.poll_interval is None:
        args.poll_interval = 1.0 if args.quick else 5.0
    return args


class _Clock:
    """Wall time inside ``execute`` / ``execute_complete`` of the patched class, and the deferral moments."""

    def __init__(self) -> None:
        self.execute_s = 0.0
        self.execute_complete_s = 0.0
        self.deferred_at: float | None = None
        self.resumed_at: float | None = None

    def patch(self, cls: Any) -> None:
        from airflow.exceptions import TaskDeferred

        clock = self
        execute, complete = cls.execute, cls.execute_complete

        @functools.wraps(execute)
        def timed_execute(op: Any, context: Any) -> Any:
            started = time.perf_counter()
            try:
                return execute(op, context)
            except TaskDeferred:
                clock.deferred_at = time.perf_counter()
                raise
            finally:
                clock.execute_s += time.perf_counter() - started

        @functools.wraps(complete)
        def timed_complete(op: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
            started = clock.resumed_at = time.perf_counter()
            try:
                return complete(op, context, *args, **kwargs)
            finally:
                clock.execute_complete_s += time.perf_counter() - started

        cls.execute, cls.execute_complete = timed_execute, timed_complete
        self._restore = (cls, execute, complete)

    def unpatch(self) -> None:
        cls, execute, complete = self._restore
        cls.execute, cls.execute_complete = execute, complete


def _run_mode(deferrable: bool, args: argparse.Namespace, server: Any, user: Any, tmp: Path) -> ModeResult:
    import pendulum
    from airflow.models import Variable
    from airflow.sdk import DAG

    from airflow_provider_preservica.client.auth.cache import TokenCache
    from airflow_provider_preservica.operators.ingest import PreservicaIngestOperator
    from benchmarks.fault_scenarios import CONN_ENV, TOKEN_VARIABLE, _connection, _control, serialise_dag

    mode = "deferrable" if deferrable else "polling"
    base = server.base_url
    source = tmp / mode / "delivery"
    source.mkdir(parents=True)
    for index in range(3):
        (source / f"page-{index:03d}.tif").write_bytes(f"page {index} ".encode() * 5000)
    _control(base, "POST", "/reset")
    seed = tmp / "seed.json"
    seed.write_text(json.dumps({"folders": [{"ref": PARENT_REF, "title": "Slot benchmark"}]}), encoding="utf-8")
    _control(base, "POST", "/seed", {"file": str(seed)})
    _control(base, "POST", "/config", {"ingest_seconds": args.ingest_seconds, "token_lifetime": 900})
    TokenCache.clear_memory()
    Variable.delete(TOKEN_VARIABLE)
    os.environ[CONN_ENV] = _connection(server, user, {})
    with DAG(
        f"slot_seconds_{mode}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False
    ) as dag:
        PreservicaIngestOperator(
            task_id="ingest",
            source=str(source),
            parent_ref=PARENT_REF,
            security_tag="open",
            poll_interval=args.poll_interval,
            timeout=args.ingest_seconds * 3 + 120,
            deferrable=deferrable,
            retries=0,
        )
    serialise_dag(dag)
    clock = _Clock()
    clock.patch(PreservicaIngestOperator)
    try:
        started = time.perf_counter()
        dag_run = dag.test()
        run_wall_s = time.perf_counter() - started
    finally:
        clock.unpatch()
    stats = _control(base, "GET", "/stats")
    state = next(iter(str(ti.state) for ti in dag_run.get_task_instances()), "none")
    polls = sum(n for route, n in stats["requests"].items() if route.startswith("GET /api/entity/progress/"))
    wait = (clock.resumed_at - clock.deferred_at) if clock.deferred_at and clock.resumed_at else 0.0
    return ModeResult(
        mode=mode,
        state=state,
        slot_s=clock.execute_s + clock.execute_complete_s,
        execute_s=clock.execute_s,
        execute_complete_s=clock.execute_complete_s,
        trigger_wait_s=wait,
        run_wall_s=run_wall_s,
        progress_polls=polls,
        logins=int(sum(stats["logins"].values())),
    )


def _report(results: list[ModeResult], args: argparse.Namespace) -> str:
    header = (
        f"{'mode':<11} {'state':<8} {'slot s':>8} {'execute s':>9} {'complete s':>10} {'trigger wait s':>14} "
        f"{'polls':>5} {'logins':>6} {'run wall s':>10}"
    )
    lines = [
        f"Worker slot-seconds for one ingest that takes {args.ingest_seconds:g} s in the sandbox "
        f"(poll every {args.poll_interval:g} s)",
        "",
        header,
        "-" * len(header),
    ]
    for r in results:
        lines.append(
            f"{r.mode:<11} {r.state:<8} {r.slot_s:>8.2f} {r.execute_s:>9.2f} {r.execute_complete_s:>10.2f} "
            f"{r.trigger_wait_s:>14.2f} {r.progress_polls:>5} {r.logins:>6} {r.run_wall_s:>10.2f}"
        )
    polling, deferred = results
    ratio = polling.slot_s / deferred.slot_s if deferred.slot_s else float("nan")
    lines += [
        "",
        f"Slot-seconds polling / deferrable: {polling.slot_s:.2f} / {deferred.slot_s:.2f} = {ratio:.1f}x",
        "slot s = wall time inside execute() + execute_complete(); trigger wait = deferral to execute_complete(),",
        "spent in the triggerer (no worker slot). dag.test runs the trigger in-process.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    import logging
    import warnings

    with harness.workdir("preservica-slots-") as tmp:
        _prepare_environment(tmp, database=True)
        warnings.filterwarnings("ignore")
        server = None
        try:
            from airflow.utils import db
            from preservica_sandbox import SandboxServer, SandboxUser

            db.resetdb()
            logging.getLogger().setLevel(logging.WARNING)
            user = SandboxUser(name="slot-robot", password="Sl0t-R0bot-pw-2026", tenant="SLOTS")
            server = SandboxServer(users=[user], token_lifetime=900).start()
            results = [_run_mode(deferrable, args, server, user, tmp) for deferrable in (False, True)]
        finally:
            if server is not None:
                server.stop()
    print(_report(results, args))
    payload = {
        "benchmark": "slot_seconds",
        "ingest_seconds": args.ingest_seconds,
        "poll_interval": args.poll_interval,
        "results": [asdict(r) for r in results],
    }
    harness.write_json(args.json, payload, say=False)
    return 0 if all(r.state == "success" for r in results) else 1


if __name__ == "__main__":
    harness.run(main)
