"""Single flight across OS processes: many Airflow task processes, one login."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, SESSION_LOG, connection_json, logins
from tests.integration.conftest import delete_variable, sync_test_dags

PROCESSES = 8

RUNNER = textwrap.dedent(
    """
    import importlib.util, sys
    import pendulum
    spec = importlib.util.spec_from_file_location("token_sharing_dags", sys.argv[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run = module.single_token_dag.test(logical_date=pendulum.parse(sys.argv[2]))
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    print("STATES", states)
    sys.exit(0 if set(states.values()) == {"success"} else 1)
    """
)


@pytest.mark.integration
@pytest.mark.multiprocess
@pytest.mark.parametrize("hosts", ["one host", "eight hosts"])
def test_processes_asking_at_the_same_moment_produce_one_login(preservica_conn, airflow_db, tmp_path: Path, hosts):
    """Eight task processes ask for a token within milliseconds of one another.

    "one host": they share the host lock directory, as tasks on one worker do. "eight hosts": each
    has its own lock directory, as tasks on different workers do, so only the cross-host login
    lease in the shared Variable keeps them to one login.
    """
    delete_variable("preservica_access_token__preservica_default")
    sync_test_dags()
    go = tmp_path / "go"
    env = dict(os.environ, AIRFLOW_CONN_PRESERVICA_DEFAULT=connection_json(preservica_conn), PRESERVICA_GO_FILE=str(go))
    workers = []
    for index in range(PROCESSES):
        ready = tmp_path / f"ready-{index}"
        worker_env = dict(env, PRESERVICA_READY_FILE=str(ready))
        if hosts == "eight hosts":
            lock_dir = tmp_path / f"host-{index}"
            lock_dir.mkdir()
            worker_env["PRESERVICA_LOCK_DIR"] = str(lock_dir)
        logical_date = f"2026-{3 if hosts == 'one host' else 4:02d}-{index + 1:02d}T00:00:00+00:00"
        workers.append(
            (
                ready,
                subprocess.Popen(
                    [sys.executable, "-c", RUNNER, str(REPO / "tests" / "dags" / "token_sharing.py"), logical_date],
                    env=worker_env,
                    cwd=REPO,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                ),
            )
        )
    deadline = time.time() + 180
    while not all(ready.exists() for ready, _ in workers):
        assert time.time() < deadline, "task processes did not start in time"
        dead = [proc for _, proc in workers if proc.poll() is not None]
        assert not dead, "a task process died before asking for a token:\n" + dead[0].communicate()[0][-4000:]
        time.sleep(0.05)
    go.touch()  # every process now asks for a token within a few milliseconds of the others

    outputs = []
    for _, proc in workers:
        out, _ = proc.communicate(timeout=180)
        outputs.append((proc.returncode, out))
    with SESSION_LOG.open("a", encoding="utf-8") as log:
        for _, out in outputs:
            log.write(out)
    assert [code for code, _ in outputs] == [0] * PROCESSES, outputs[0][1][-3000:]
    assert logins(preservica_conn) == 1
