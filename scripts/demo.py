"""``make demo``: the example DAGs end to end against the Preservica sandbox, on Airflow's embedded SQLite.

Starts the sandbox (500 seeded assets), delivers today's sample files to ``.demo/landing/<date>`` (one of
them with a name Preservica rejects), then runs with ``airflow dags test``: the nightly ingest (staging,
quarantine, OPEX with fixity, deferred wait, verification, sources filed to ``done/``, CSV report), the
search report and an export of the folder just ingested (verified and unpacked). It prints what happened.
Every process it started (the sandbox, a running ``airflow``) is stopped on the way out, also on failure
or Ctrl-C. Everything lives under ``.demo/``; a second run reuses it.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / ".demo"
AIRFLOW_HOME = DEMO / "airflow-home"
LANDING = DEMO / "landing"
REPORTS = DEMO / "reports"
EXPORTS = DEMO / "exports"
BIN = Path(sys.executable).parent
USER, PASSWORD, TENANT = "archivist", "demo-Archivist-pw", "SANDBOX"
POOL = "preservica_ingest_preservica_default"
SAMPLES = {
    "minutes-1921.txt": "Minutes of the parish council, 3 March 1921.\n" * 200,
    "letters/letter-to-the-mayor.txt": "Dear Sir, I write concerning the bridge.\n" * 300,
    "letters/reply-from-the-mayor.txt": "Sir, thank you for your letter.\n" * 250,
    "letters/draft: reply?.txt": "Sir, (unfinished)\n",  # ':' and '?' fail an OPEX ingest: quarantined
}

# `airflow db migrate`, then `airflow pools set --include-deferred <POOL> 2 ...`, in one process
# (each start of Airflow costs seconds).
PREPARE = f"""
from airflow.utils import db
db.upgradedb()
from airflow.models.pool import Pool
Pool.create_or_update_pool({POOL!r}, 2, "Concurrent ingests into Preservica (preservica_default)", True)
print("pool {POOL}: 2 slots")
"""


def stop(process: subprocess.Popen[str]) -> None:
    """Stop a process we started, and everything it started (it leads its own process group)."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def start_sandbox() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_preservica.sandbox", "--port", "0",
         "--user", f"{USER}:{PASSWORD}:{TENANT}", "--token-lifetime", "900", "--seed-assets", "500"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("Preservica sandbox ready at "):
        stop(process)
        raise SystemExit(f"the sandbox did not start: {line!r}")
    return process, line.rsplit(" ", 1)[-1]


def deliver_today() -> tuple[str, Path]:
    """Today's delivery in ``.demo/landing/<date>`` (a second run delivers the same files again)."""
    day = datetime.now(timezone.utc).date().isoformat()
    folder = LANDING / day
    for name, text in SAMPLES.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return day, folder


def airflow_env(base_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))}
    env.update(
        AIRFLOW_HOME=str(AIRFLOW_HOME),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "example_dags"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{AIRFLOW_HOME}/airflow.db",
        AIRFLOW_VAR_PRESERVICA_LANDING_DIR=str(LANDING),
        AIRFLOW_VAR_PRESERVICA_REPORTS_DIR=str(REPORTS),
        AIRFLOW_VAR_PRESERVICA_REPORT_DIR=str(REPORTS),
        AIRFLOW_VAR_PRESERVICA_EXPORT_DIR=str(EXPORTS),
        AIRFLOW_CONN_PRESERVICA_DEFAULT=json.dumps(
            {"conn_type": "preservica", "host": base_url, "login": USER, "password": PASSWORD,
             "extra": {"tenant": TENANT}}
        ),
    )  # fmt: skip
    return env


def run(step: str, args: list[str], env: dict[str, str], log: Path) -> str:
    """Run one command in its own process group; on failure (or Ctrl-C) nothing of it is left running."""
    print(f"-> {step}", flush=True)
    started = time.time()
    process = subprocess.Popen(
        args, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=600)
    finally:
        stop(process)
    log.write_text(output)
    states = re.findall(r"DagRun Finished: .*?state=(\w+)", output)
    if process.returncode != 0 or (states and states[-1] != "success"):
        tail = "\n".join(output.splitlines()[-25:])
        raise SystemExit(f"{step} failed (exit {process.returncode}); full log in {log}\n{tail}")
    print(f"   done in {time.time() - started:.1f} s (log: {log.relative_to(REPO)})", flush=True)
    return output


def sandbox_stats(base_url: str) -> dict:
    with urllib.request.urlopen(f"{base_url}/_sandbox/stats", timeout=10) as response:
        return json.load(response)


def main() -> int:
    # A plain `kill` (SIGTERM) unwinds like Ctrl-C, so the finally blocks stop what this script started.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    for folder in (AIRFLOW_HOME, REPORTS, EXPORTS):
        folder.mkdir(parents=True, exist_ok=True)
    airflow = str(BIN / "airflow")
    sandbox, base_url = start_sandbox()
    print(f"-> Preservica sandbox running at {base_url} (500 seeded assets)")
    try:
        env = airflow_env(base_url)
        run(f"airflow db migrate (SQLite) + pool {POOL} (2 slots)", [sys.executable, "-c", PREPARE], env,
            DEMO / "db-migrate.log")  # fmt: skip
        day, landing = deliver_today()
        outputs = {}
        for dag_id, note in [
            ("preservica_nightly_ingest", "stage, quarantine, OPEX + fixity, upload, deferred wait, verify, file"),
            ("preservica_search_report", "CSV of every open asset"),
        ]:
            outputs[dag_id] = run(f"airflow dags test {dag_id}   ({note})", [airflow, "dags", "test", dag_id], env,
                                  DEMO / f"{dag_id}.log")  # fmt: skip
        summary = (REPORTS / f"ingest-{day}.txt").read_text(encoding="utf-8")
        folder_ref = re.search(r"parent folder\s*: (\S+)", summary)
        if not folder_ref or folder_ref.group(1) == "-":
            raise SystemExit(f"the nightly ingest did not name its Preservica folder; see {REPORTS}/ingest-{day}.txt")
        dag_id = "preservica_export_collection"
        outputs[dag_id] = run(
            f"airflow dags test {dag_id}   (the folder just ingested: export, verify, unpack)",
            [airflow, "dags", "test", dag_id, "-c", json.dumps({"collection_ref": folder_ref.group(1)})],
            env,
            DEMO / f"{dag_id}.log",
        )
        stats = sandbox_stats(base_url)
    finally:
        stop(sandbox)
        print("-> sandbox stopped")
    report(day, landing, outputs, stats)
    return 0


def report(day: str, landing: Path, outputs: dict[str, str], stats: dict) -> None:
    text = "\n".join(outputs.values())
    with (REPORTS / f"ingest-{day}.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    outcomes = Counter(row["outcome"] for row in rows)
    quarantined = [
        f"{row['path']} ({row['detail'].split(':', 1)[0]})" for row in rows if row["outcome"] == "quarantined"
    ]
    searches = sorted(REPORTS.glob(f"open-assets-{day}.csv"))
    exported = re.findall(r"Exported (\S+): ([\d,]+) bytes, (\d+) files", text)
    calls = sum(n for route, n in stats["requests"].items() if not route.startswith("POST /api/accesstoken"))
    print()
    print("What happened")
    for dag_id, output in outputs.items():
        state = (re.findall(r"DagRun Finished: .*?state=(\w+)", output) or ["unknown"])[-1]
        print(f"  {dag_id:<30}: {state}")
    print(f"  delivery                      : {landing} ({len(rows)} files)")
    print(
        f"  assets ingested               : {outcomes['created']} created, {outcomes['skipped']} already present, "
        f"{outcomes['quarantined']} quarantined"
    )
    if quarantined:
        print(f"  quarantined                   : {', '.join(quarantined)} -> {LANDING / 'quarantine'}")
    print(f"  sources filed to              : {LANDING / 'done' / day}")
    print(f"  ingest report                 : {REPORTS / f'ingest-{day}.csv'} (summary: ingest-{day}.txt)")
    if searches:
        hits = searches[-1].read_text(encoding="utf-8").count("\n") - 1
        print(f"  search report                 : {searches[-1]} ({hits} open assets)")
    if exported:
        path, size, files = exported[-1]
        print(f"  export                        : {path} ({size} bytes, {files} files, verified, unpacked)")
    logins = sum(stats["logins"].values())
    print(f"  logins used                   : {logins} for {calls} API calls in {len(outputs)} runs")


if __name__ == "__main__":
    sys.exit(main())
