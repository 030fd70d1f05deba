"""Task processes that ask for a token at the same moment: the single-flight tests across OS processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from tests.support import REPO
from tests.support.airflow_db import sync_test_dags
from tests.support.sandbox import connection_json
from tests.support.session import SESSION_LOG

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


class TokenRace:
    """Task processes that each run ``single_token_dag`` and wait at a start line (the "go" file) until
    all of them are ready, so that they ask for a token within milliseconds of one another."""

    def __init__(self, server: Any, tmp_path: Path, count: int, *, month: int) -> None:
        self.tmp_path, self.count, self.month = tmp_path, count, month
        self.go_file = tmp_path / "go"
        self.env = dict(
            os.environ, AIRFLOW_CONN_PRESERVICA_DEFAULT=connection_json(server), PRESERVICA_GO_FILE=str(self.go_file)
        )
        self.workers: list[tuple[Path, subprocess.Popen[str]]] = []

    def start(self, *, own_lock_dirs: bool) -> None:
        """``own_lock_dirs``: each process gets its own host lock directory, as on different workers."""
        sync_test_dags()
        for index in range(self.count):
            ready = self.tmp_path / f"ready-{index}"
            env = dict(self.env, PRESERVICA_READY_FILE=str(ready))
            if own_lock_dirs:
                lock_dir = self.tmp_path / f"host-{index}"
                lock_dir.mkdir()
                env["PRESERVICA_LOCK_DIR"] = str(lock_dir)
            logical_date = f"2026-{self.month:02d}-{index + 1:02d}T00:00:00+00:00"
            process = subprocess.Popen(
                [sys.executable, "-c", RUNNER, str(REPO / "tests" / "dags" / "token_sharing.py"), logical_date],
                env=env,
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            self.workers.append((ready, process))

    def wait_until_ready(self) -> None:
        deadline = time.time() + 180
        while not all(ready.exists() for ready, _ in self.workers):
            assert time.time() < deadline, "task processes did not start in time"
            dead = [proc for _, proc in self.workers if proc.poll() is not None]
            assert not dead, "a task process died before asking for a token:\n" + dead[0].communicate()[0][-4000:]
            time.sleep(0.05)

    def go(self) -> list[tuple[int, str]]:
        """Let every process go; each one's (exit code, output), also appended to the session log."""
        self.go_file.touch()
        outputs = []
        for _, proc in self.workers:
            out, _ = proc.communicate(timeout=180)
            outputs.append((proc.returncode, out))
        with SESSION_LOG.open("a", encoding="utf-8") as log:
            for _, out in outputs:
                log.write(out)
        return outputs
