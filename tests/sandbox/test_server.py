"""Running the sandbox: the CLI as a subprocess, and persistence across restarts with a data directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from preservica_sandbox import SandboxServer
from preservica_sandbox.state import SandboxState

from tests.support.clock import FakeClock

from .conftest import login, post_faults, stats

REPO_ROOT = Path(__file__).resolve().parents[2]
READY = "Preservica sandbox ready at "


def _start_cli(*args: str) -> tuple[subprocess.Popen[str], str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "preservica_sandbox", "--port", "0", *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # blocks until the ready line (or EOF if it died)
    if not line.startswith(READY):
        process.kill()
        _, err = process.communicate(timeout=10)
        pytest.fail(f"no ready line, got {line!r}; stderr: {err[-2000:]}")
    return process, line[len(READY) :].strip()


def _stop_cli(process: subprocess.Popen[str], sig: int) -> tuple[int, str, str]:
    process.send_signal(sig)
    try:
        out, err = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return process.returncode, out, err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_prints_ready_line_serves_and_stops_cleanly(sig: int) -> None:
    process, url = _start_cli(
        "--user",
        "cli-user:cli-password-123:CLI",
        "--token-lifetime",
        "60",
        "--version",
        "8.1.0",
        "--log-level",
        "info",
    )
    try:
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        response = login(url, "cli-user", "cli-password-123", includeUserDetails="true")
        assert response.status_code == 200
        assert response.json()["validFor"] == 1 and response.json()["tenant"] == "CLI"
        version = requests.get(
            f"{url}/api/entity/versiondetails/version",
            headers={"Preservica-Access-Token": response.json()["token"]},
            timeout=10,
        )
        assert "<CurrentVersion>8.1.0</CurrentVersion>" in version.text
        assert login(url).status_code == 401  # explicit users replace the default account
        assert login(url, "cli-user", "wrong-password-456").status_code == 401
        post_faults(url, {"kind": "drop", "route": "/api/user/details"})
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(f"{url}/api/user/details", timeout=10)
    finally:
        code, out, err = _stop_cli(process, sig)
    assert code == 0, err
    assert out == ""  # exactly one line on stdout: the ready line already read
    assert "cli-password-123" not in err
    assert "Traceback" not in err and "ERROR" not in err
    assert "issued to 'cli-user'" in err  # the logs are on, and still hold no secrets:
    assert "wrong-password-456" not in err
    assert response.json()["token"] not in err


def test_cli_rejects_a_bad_user_spec_without_echoing_it() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "preservica_sandbox",
            "--port",
            "0",
            "--user",
            "only-a-name-pw9",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "only-a-name-pw9" not in result.stderr


def test_data_dir_keeps_tokens_and_counters_across_restart(tmp_path: Path) -> None:
    with SandboxServer(data_dir=tmp_path, users=["keeper:keeper-pw:ARCHIVE"]) as first:
        token = login(first.base_url, "keeper", "keeper-pw").json()["token"]
        refresh_body = login(first.base_url, "keeper", "keeper-pw").json()
        headers = {"Preservica-Access-Token": token}
        assert requests.get(f"{first.base_url}/api/user/details", headers=headers, timeout=10).ok
    saved = tmp_path / "sandbox-state.json"
    assert saved.exists() and oct(saved.stat().st_mode & 0o777) == "0o600"
    with SandboxServer(data_dir=tmp_path) as second:
        details = requests.get(f"{second.base_url}/api/user/details", headers=headers, timeout=10)
        assert details.status_code == 200 and details.json()["tenant"] == "ARCHIVE"
        refreshed = requests.post(
            f"{second.base_url}/api/accesstoken/refresh",
            data={"refreshToken": refresh_body["refresh-token"]},
            headers={"Preservica-Access-Token": refresh_body["token"]},
            timeout=10,
        )
        assert refreshed.status_code == 200
        counted = stats(second.base_url)
        assert counted["logins"] == {"keeper": 2}
        assert counted["requests"]["GET /api/user/details"] == 2
        assert counted["active_tokens"] == 3
        assert login(second.base_url).status_code == 401  # no default account added to a stored user list


def test_data_dir_honours_expiry_across_restart(tmp_path: Path) -> None:
    clock = FakeClock()
    with SandboxServer(state=SandboxState(data_dir=tmp_path, token_lifetime=1, clock=clock)) as first:
        token = login(first.base_url).json()["token"]
    clock.advance(1)
    with SandboxServer(state=SandboxState(data_dir=tmp_path, clock=clock)) as second:
        response = requests.get(
            f"{second.base_url}/api/user/details", headers={"Preservica-Access-Token": token}, timeout=10
        )
        assert response.status_code == 401
