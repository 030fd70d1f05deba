"""``make demo``: the nightly ingest end to end against the Preservica sandbox, on Airflow's SQLite.

Starts the sandbox, stages today's sample delivery in ``.demo/landing/<date>``, then runs three
example DAGs with ``airflow dags test``: the nightly ingest (deferrable), the search report and the
token check. It prints what happened and stops the sandbox on the way out, also when something
fails. Everything lives under ``.demo/`` and a second run reuses it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / ".demo"
AIRFLOW_HOME = DEMO / "airflow-home"
BIN = Path(sys.executable).parent
DAG_IDS = ["preservica_nightly_ingest", "preservica_search_report", "preservica_token_check"]
USER, PASSWORD, TENANT = "archivist", "demo-Archivist-pw", "SANDBOX"


def start_sandbox() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_preservica.sandbox", "--port", "0",
         "--user", f"{USER}:{PASSWORD}:{TENANT}", "--token-lifetime", "900", "--seed-assets", "500"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("Preservica sandbox ready at "):
        proc.kill()
        raise SystemExit(f"the sandbox did not start: {line!r}")
    return proc, line.rsplit(" ", 1)[-1]


def stage_landing_folder() -> Path:
    """Today's delivery: a few sample files in ``.demo/landing/<date>`` (kept between runs)."""
    folder = DEMO / "landing" / datetime.now(timezone.utc).date().isoformat()
    (folder / "letters").mkdir(parents=True, exist_ok=True)
    samples = {
        "minutes-1921.txt": "Minutes of the parish council, 3 March 1921.\n" * 200,
        "letters/letter-to-the-mayor.txt": "Dear Sir, I write concerning the bridge.\n" * 300,
        "letters/reply-from-the-mayor.txt": "Sir, thank you for your letter.\n" * 250,
    }
    for name, text in samples.items():
        path = folder / name
        if not path.exists():
            path.write_text(text, encoding="utf-8")
    return folder


def airflow_env(base_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        AIRFLOW_HOME=str(AIRFLOW_HOME),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "example_dags"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{AIRFLOW_HOME}/airflow.db",
        AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE="True",
        AIRFLOW_VAR_PRESERVICA_LANDING_DIR=str(DEMO / "landing"),
        AIRFLOW_VAR_PRESERVICA_REPORTS_DIR=str(DEMO / "reports"),
        AIRFLOW_VAR_PRESERVICA_REPORT_DIR=str(DEMO / "reports"),
        AIRFLOW_CONN_PRESERVICA_DEFAULT=json.dumps(
            {"conn_type": "preservica", "host": base_url, "login": USER, "password": PASSWORD,
             "extra": {"tenant": TENANT}}
        ),
    )  # fmt: skip
    return env


def run(step: str, args: list[str], env: dict[str, str], log: Path) -> str:
    print(f"-> {step}", flush=True)
    started = time.time()
    result = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True)
    log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-25:])
        raise SystemExit(f"{step} failed (exit {result.returncode}); full log in {log}\n{tail}")
    print(f"   done in {time.time() - started:.1f} s (log: {log.relative_to(REPO)})", flush=True)
    return result.stdout + result.stderr


def main() -> int:
    AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    sandbox, base_url = start_sandbox()
    print(f"-> Preservica sandbox running at {base_url} (500 seeded assets)")
    try:
        env = airflow_env(base_url)
        run("airflow db migrate (SQLite)", [str(BIN / "airflow"), "db", "migrate"], env, DEMO / "db-migrate.log")
        landing = stage_landing_folder()
        outputs = {
            dag_id: run(f"airflow dags test {dag_id}", [str(BIN / "airflow"), "dags", "test", dag_id], env,
                        DEMO / f"{dag_id}.log")
            for dag_id in DAG_IDS
        }  # fmt: skip
        with urllib.request.urlopen(f"{base_url}/_sandbox/stats", timeout=10) as response:
            stats = json.load(response)
    finally:
        sandbox.terminate()
        try:
            sandbox.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sandbox.kill()
        print("-> sandbox stopped")
    text = "\n".join(outputs.values())
    states = {d: (re.findall(r"DagRun Finished: .*?state=(\w+)", o) or ["unknown"])[-1] for d, o in outputs.items()}
    ingest = re.findall(r"(Ingest \w+: .*?); report (\S+)", text)
    reports = sorted((DEMO / "reports").glob("open-assets-*.csv"))
    reached = re.findall(r"Reached (Preservica .*?\))", text)
    calls = sum(n for route, n in stats["requests"].items() if not route.startswith("POST /api/accesstoken"))
    print()
    print("What happened")
    for dag_id, state in states.items():
        print(f"  {dag_id:<26}: {state}")
    print(f"  landing folder            : {landing} ({sum(1 for p in landing.rglob('*') if p.is_file())} files)")
    print(f"  ingest                    : {ingest[-1][0] if ingest else '(see the log)'}")
    print(f"  ingest report             : {ingest[-1][1] if ingest else '-'}")
    if reports:
        rows = reports[-1].read_text(encoding="utf-8").count("\n") - 1
        print(f"  search report             : {reports[-1]} ({rows} open assets)")
    print(f"  account reached           : {reached[-1] if reached else '(see the log)'}")
    print(f"  logins used               : {sum(stats['logins'].values())} for {calls} API calls in {len(DAG_IDS)} runs")
    return 0 if all(state == "success" for state in states.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
