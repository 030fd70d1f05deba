"""``make airflow``: the Airflow UI with this provider, the example DAGs and a seeded Preservica sandbox.

Starts the sandbox (500 seeded assets), stages today's sample delivery, then runs ``airflow standalone``
(scheduler, dag-processor, triggerer and api-server on SQLite) with:

- ``AIRFLOW_HOME=.airflow-standalone`` (kept between runs, like the admin password and the Fernet key),
- the DAGs folder pointing at ``example_dags/``,
- ``preservica_default`` pointing at the sandbox, and the Connection form's Test button enabled.

It prints the URL and the login once the UI answers, and stops everything on Ctrl-C (or SIGTERM).
``--port``/``--home`` let several copies run side by side (the browser test uses them).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import NoReturn

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
USER, PASSWORD, TENANT = "archivist", "standalone-Archivist-pw", "SANDBOX"
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"
POOLS = (
    "preservica_ingest_preservica_default",
    "preservica_ingest_preservica_test",
    "preservica_ingest_preservica_prod",
)
READY_TIMEOUT = 300.0


class Stop(Exception):
    """SIGTERM, handled like Ctrl-C."""


def _raise_stop(signum: int, frame: object) -> NoReturn:
    raise Stop


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_sandbox(port: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "preservica_sandbox", "--port", str(port),
         "--user", f"{USER}:{PASSWORD}:{TENANT}", "--token-lifetime", "900", "--seed-assets", "500"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("Preservica sandbox ready at "):
        stop(proc, "sandbox")
        raise SystemExit(f"the Preservica sandbox did not start: {line or 'no output'}")
    # Keep reading what it prints, so a full pipe can never block it.
    threading.Thread(target=proc.stdout.read, name="sandbox-stdout", daemon=True).start()
    return proc, line.rsplit(" ", 1)[-1]


def stage_landing_folder(landing: Path) -> Path:
    """Today's delivery for the nightly ingest DAG (``{landing}/{{ ds }}``), kept between runs."""
    folder = landing / datetime.now(timezone.utc).date().isoformat()
    (folder / "letters").mkdir(parents=True, exist_ok=True)
    samples = {
        "minutes-1921.txt": "Minutes of the parish council, 3 March 1921.\n" * 200,
        "letters/letter-to-the-mayor.txt": "Dear Sir, I write concerning the bridge.\n" * 300,
    }
    for name, text in samples.items():
        if not (folder / name).exists():
            (folder / name).write_text(text, encoding="utf-8")
    return folder


def fernet_key(home: Path) -> str:
    """One key per AIRFLOW_HOME, kept next to the database it encrypts (a new key could not read it)."""
    path = home / "fernet.key"
    if not path.exists():
        path.write_text(base64.urlsafe_b64encode(os.urandom(32)).decode(), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def airflow_env(home: Path, host: str, port: int, sandbox_url: str) -> dict[str, str]:
    data = home / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",  # standalone starts its components as `airflow ...`
        AIRFLOW_HOME=str(home),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "example_dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__FERNET_KEY=fernet_key(home),
        AIRFLOW__CORE__TEST_CONNECTION="Enabled",
        AIRFLOW__API__HOST=host,
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        # Internal log servers on free ports, so this can run beside another Airflow on the machine.
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
        AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(free_port()),
        AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE="True",
        AIRFLOW_CONN_PRESERVICA_DEFAULT=json.dumps(
            {"conn_type": "preservica", "host": sandbox_url, "login": USER, "password": PASSWORD,
             "extra": {"tenant": TENANT}}
        ),
        AIRFLOW_VAR_PRESERVICA_LANDING_DIR=str(data / "landing"),
        AIRFLOW_VAR_PRESERVICA_REPORTS_DIR=str(data / "reports"),
        AIRFLOW_VAR_PRESERVICA_REPORT_DIR=str(data / "reports"),
        AIRFLOW_VAR_PRESERVICA_EXPORT_DIR=str(data / "exports"),
    )  # fmt: skip
    return env


def wait_until_ready(
    proc: subprocess.Popen[bytes], url: str, home: Path, log: Path, *, need_scheduler: bool = True
) -> dict[str, str]:
    """Until the api-server answers (with a healthy scheduler, unless UI-only) and the admin password file exists."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            raise SystemExit(f"airflow standalone exited with {proc.returncode}; log: {log}\n{tail}")
        try:
            with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=5) as response:
                health = json.load(response)
            passwords = home / PASSWORDS_FILE
            scheduler_ok = health.get("scheduler", {}).get("status") == "healthy" or not need_scheduler
            if health.get("metadatabase", {}).get("status") == "healthy" and scheduler_ok and passwords.exists():
                logins: dict[str, str] = json.loads(passwords.read_text(encoding="utf-8"))
                return logins
        except (OSError, ValueError):
            pass
        time.sleep(1)
    raise SystemExit(f"Airflow was not ready after {READY_TIMEOUT:.0f} s; log: {log}")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop(proc: subprocess.Popen[str] | subprocess.Popen[bytes], name: str, grace: float = 30.0) -> None:
    """SIGTERM to the process group (each child was started in its own session), then SIGKILL.

    Waits for the whole group: ``airflow standalone`` may exit before its scheduler, api-server... have.
    """
    pgid = proc.pid
    if _group_alive(pgid):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _group_alive(pgid) and time.monotonic() < deadline:
        proc.poll()  # reap the leader: a zombie would keep the group "alive"
        time.sleep(0.2)
    if _group_alive(pgid):
        print(f"-> {name} did not stop within {grace:.0f} s; killing it", flush=True)
        os.killpg(pgid, signal.SIGKILL)
    proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8080, help="port of the Airflow UI and API (default 8080)")
    parser.add_argument("--host", default="127.0.0.1", help="interface of the UI (default 127.0.0.1)")
    parser.add_argument("--home", type=Path, default=REPO / ".airflow-standalone", help="AIRFLOW_HOME")
    parser.add_argument("--sandbox-port", type=int, default=0, help="port of the sandbox (default: a free one)")
    parser.add_argument(
        "--ui-only",
        action="store_true",
        help="only the api-server (UI, REST API, Connection form and Test button): starts faster, runs no DAGs",
    )
    args = parser.parse_args(argv)
    home: Path = args.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background
    url = f"http://{'localhost' if args.host in ('127.0.0.1', '0.0.0.0') else args.host}:{args.port}"
    log = home / "standalone.log"
    sandbox: subprocess.Popen[str] | None = None
    airflow: subprocess.Popen[bytes] | None = None
    try:
        sandbox, sandbox_url = start_sandbox(args.sandbox_port)
        print(f"-> Preservica sandbox at {sandbox_url} (500 seeded assets; account {USER} / {PASSWORD})", flush=True)
        env = airflow_env(home, args.host, args.port, sandbox_url)
        stage_landing_folder(Path(env["AIRFLOW_VAR_PRESERVICA_LANDING_DIR"]))
        what = "airflow api-server (UI only)" if args.ui_only else "airflow standalone"
        print(f"-> {what} in {home} (log: {log}); the first start takes a minute", flush=True)
        with log.open("ab") as out:
            subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, cwd=REPO, stdout=out,
                           stderr=subprocess.STDOUT, check=True)  # fmt: skip
            for pool in POOLS:  # a scheduler never runs a task whose pool does not exist
                subprocess.run([str(BIN / "airflow"), "pools", "set", "--include-deferred", pool, "2",
                                "Concurrent Preservica ingests"], env=env, cwd=REPO, stdout=out,
                               stderr=subprocess.STDOUT, check=True)  # fmt: skip
            command = ["api-server"] if args.ui_only else ["standalone"]
            airflow = subprocess.Popen(
                [str(BIN / "airflow"), *command], env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        logins = wait_until_ready(airflow, url, home, log, need_scheduler=not args.ui_only)
        user, password = next(iter(logins.items()))
        print(
            f"\nAirflow is ready: {url}\n"
            f"  login          : {user} / {password}   (from {home / PASSWORDS_FILE})\n"
            f"  DAGs           : {REPO / 'example_dags'} (paused: switch one on, then trigger it)\n"
            f"  Connection     : preservica_default -> {sandbox_url} (an environment variable, so it is not\n"
            "                   listed under Admin > Connections; add one of type Preservica to try the form)\n"
            f"  sandbox stats  : {sandbox_url}/_sandbox/stats\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        airflow.wait()
        print(f"-> airflow standalone exited with {airflow.returncode}; log: {log}", flush=True)
        return airflow.returncode or 1
    except (KeyboardInterrupt, Stop):
        print("\n-> stopping", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        if airflow is not None:
            stop(airflow, "airflow standalone")
        if sandbox is not None:
            stop(sandbox, "sandbox", grace=10)
        print("-> Airflow and the sandbox stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())
