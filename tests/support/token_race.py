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

#: One Python that imports Airflow and the DAG once, then forks the task processes, as an Airflow worker forks
#: its tasks: argv is the DAG file, the run folder, the number of processes, the month of their logical dates and
#: "own" when each process is a host of its own (its own lock directory). Process ``i`` writes its output to
#: ``out-i`` and its exit status to ``status-i`` (0: its run succeeded), so that the test can read each one.
RUNNER = textwrap.dedent(
    """
    import importlib.util, os, sys, traceback
    import pendulum
    spec = importlib.util.spec_from_file_location("token_sharing_dags", sys.argv[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    folder, count, month, own = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "own"
    children = []
    for index in range(count):
        pid = os.fork()
        if pid:
            children.append(pid)
            continue
        code = 1
        try:
            out = os.open(f"{folder}/out-{index}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(out, 1)
            os.dup2(out, 2)
            os.environ["PRESERVICA_READY_FILE"] = f"{folder}/ready-{index}"
            if own:
                os.environ["PRESERVICA_LOCK_DIR"] = f"{folder}/host-{index}"
            date = pendulum.datetime(2026, month, index + 1, tz="UTC")
            run = module.single_token_dag.test(logical_date=date)
            states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
            print("STATES", states, flush=True)
            code = 0 if set(states.values()) == {"success"} else 1
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            with open(f"{folder}/status-{index}", "w") as status:
                status.write(str(code))
            os._exit(code)
    sys.exit(max(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0 for pid in children))
    """
)


class TokenRace:
    """Task processes that each run ``single_token_dag`` and wait at a start line (the "go" file) until
    all of them are ready, so that they ask for a token within milliseconds of one another.

    They are forked from one Python that imported Airflow and the DAG (``RUNNER``), as a worker forks its tasks:
    each is still an OS process of its own, with its own memory and token cache, and none has asked for a token
    when it is forked; the import is paid once instead of once per process.
    """

    def __init__(self, server: Any, tmp_path: Path, count: int, *, month: int) -> None:
        self.tmp_path, self.count, self.month = tmp_path, count, month
        self.go_file = tmp_path / "go"
        self.env = dict(
            os.environ, AIRFLOW_CONN_PRESERVICA_DEFAULT=connection_json(server), PRESERVICA_GO_FILE=str(self.go_file)
        )
        self.parent: subprocess.Popen[str] | None = None

    def start(self, *, own_lock_dirs: bool) -> None:
        """``own_lock_dirs``: each process gets its own host lock directory, as on different workers."""
        sync_test_dags()
        if own_lock_dirs:
            for index in range(self.count):
                (self.tmp_path / f"host-{index}").mkdir()
        self.parent = subprocess.Popen(
            [
                sys.executable,
                "-c",
                RUNNER,
                str(REPO / "tests" / "dags" / "token_sharing.py"),
                str(self.tmp_path),
                str(self.count),
                str(self.month),
                "own" if own_lock_dirs else "shared",
            ],
            env=self.env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def _output(self, index: int) -> str:
        out = self.tmp_path / f"out-{index}"
        return out.read_text(encoding="utf-8", errors="replace") if out.exists() else ""

    def wait_until_ready(self) -> None:
        assert self.parent is not None
        deadline = time.time() + 180
        while not all((self.tmp_path / f"ready-{index}").exists() for index in range(self.count)):
            assert time.time() < deadline, "task processes did not start in time"
            dead = [i for i in range(self.count) if (self.tmp_path / f"status-{i}").exists()]
            assert not dead, "a task process died before asking for a token:\n" + self._output(dead[0])[-4000:]
            assert self.parent.poll() is None, "the forking process died:\n" + self.parent.communicate()[0][-4000:]
            time.sleep(0.05)

    def go(self) -> list[tuple[int, str]]:
        """Let every process go; each one's (exit code, output), also appended to the session log."""
        assert self.parent is not None
        self.go_file.touch()
        parent_output, _ = self.parent.communicate(timeout=180)
        outputs = []
        for index in range(self.count):
            status = self.tmp_path / f"status-{index}"
            code = int(status.read_text()) if status.exists() else -1
            outputs.append((code, self._output(index) or parent_output))
        with SESSION_LOG.open("a", encoding="utf-8") as log:
            for _, out in outputs:
                log.write(out)
        return outputs
