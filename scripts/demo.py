"""``make demo``: start the Preservica sandbox, run an example DAG on Airflow's SQLite, say what happened.

Everything lives under ``.demo/`` (Airflow home, logs) and is reused by the next run. The sandbox is
stopped on the way out, also when something fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / ".demo"
AIRFLOW_HOME = DEMO / "airflow-home"
BIN = Path(sys.executable).parent
DAG_ID = "preservica_token_check"
PROBES = 8  # mapped probe tasks in the example DAG
USER, PASSWORD, TENANT = "archivist", "demo-Archivist-pw", "SANDBOX"


def start_sandbox() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_preservica.sandbox",
            "--port",
            "0",
            "--user",
            f"{USER}:{PASSWORD}:{TENANT}",
            "--token-lifetime",
            "900",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("Preservica sandbox ready at "):
        proc.kill()
        raise SystemExit(f"the sandbox did not start: {line!r}")
    return proc, line.rsplit(" ", 1)[-1]


def airflow_env(base_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        AIRFLOW_HOME=str(AIRFLOW_HOME),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "example_dags"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{AIRFLOW_HOME}/airflow.db",
        AIRFLOW_CONN_PRESERVICA_DEFAULT=json.dumps(
            {
                "conn_type": "preservica",
                "host": base_url,
                "login": USER,
                "password": PASSWORD,
                "extra": {"tenant": TENANT},
            }
        ),
    )
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
    DEMO.mkdir(exist_ok=True)
    AIRFLOW_HOME.mkdir(exist_ok=True)
    sandbox, base_url = start_sandbox()
    print(f"-> Preservica sandbox running at {base_url}")
    try:
        env = airflow_env(base_url)
        run("airflow db migrate (SQLite)", [str(BIN / "airflow"), "db", "migrate"], env, DEMO / "db-migrate.log")
        output = run(
            f"airflow dags test {DAG_ID}", [str(BIN / "airflow"), "dags", "test", DAG_ID], env, DEMO / "dags-test.log"
        )
        with urllib.request.urlopen(f"{base_url}/_sandbox/stats", timeout=10) as response:
            stats = json.load(response)
        reached = re.findall(r"Reached (Preservica .*?\))", output)
        probes = re.findall(r"(\d+ parallel probes reached .*? as \S+)", output)
        run_state = re.findall(r"DagRun Finished: .*?state=(\w+)", output)
        calls = sum(n for route, n in stats["requests"].items() if not route.startswith("POST /api/accesstoken"))
        failed = run_state[-1:] != ["success"]
        print()
        print("What happened")
        print(f"  DAG run         : {DAG_ID} -> {run_state[-1] if run_state else 'unknown'}")
        print(f"  account reached : {reached[-1] if reached else '(see the log)'}")
        print(f"  parallel tasks  : {probes[-1] if probes else '(see the log)'}")
        print(
            f"  logins used     : {sum(stats['logins'].values())} login for {calls} API calls from {PROBES + 1} tasks"
        )
        print(f"  token cache     : Airflow Variable preservica_access_token__preservica_default in {AIRFLOW_HOME}")
        return 1 if failed else 0
    finally:
        sandbox.terminate()
        try:
            sandbox.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sandbox.kill()
        print("-> sandbox stopped")


if __name__ == "__main__":
    sys.exit(main())
