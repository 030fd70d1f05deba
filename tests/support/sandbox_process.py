"""The sandbox as an OS process (``python -m preservica_sandbox``): the benchmarks measure the client alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from tests.support import REPO


class SandboxProcess:
    """``python -m preservica_sandbox`` in its own process, so that the client is measured alone.

    ``base_url`` comes from the sandbox's ready line; ``user`` is its one account (name, password, tenant).
    """

    def __init__(self, data_dir: Path, log_path: Path, user: dict[str, str]) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.user = user
        self.process: subprocess.Popen[str] | None = None
        self.base_url = ""

    def start(self) -> SandboxProcess:
        account = f"{self.user['name']}:{self.user['password']}:{self.user['tenant']}"
        command = [sys.executable, "-m", "preservica_sandbox", "--port", "0", "--user", account]
        command += ["--data-dir", str(self.data_dir)]
        with self.log_path.open("w", encoding="utf-8") as log:
            self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True, cwd=REPO)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if "ready at" not in line:
            self.stop()
            raise RuntimeError(f"the sandbox did not start: {line!r}; see {self.log_path}")
        self.base_url = line.strip().rsplit(" ", 1)[1]
        return self

    @property
    def server(self) -> str:
        return self.base_url.split("://", 1)[1]

    @property
    def pid(self) -> int:
        return self.process.pid if self.process is not None else 0

    def cpu_seconds(self) -> float:
        """CPU time (user + system, all threads) the sandbox process has used so far."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def control(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.base_url}/_sandbox{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None
