"""The two distributions as users get them: built, checked, and installed from the wheels into a clean venv.

Builds ``airflow-provider-preservica`` (this folder) and ``preservica-sandbox`` (``sandbox/``) with
``python -m build``, checks them with ``twine check --strict``, looks inside the provider wheel, then
installs both wheels (not the editable checkout) with the same Airflow into a new venv and runs an
example DAG there against a sandbox started from the installed console script.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.release

SANDBOX_PROJECT = REPO / "sandbox"


def _run(*args: str | os.PathLike[str], timeout: float = 600, **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, **kwargs)
    assert result.returncode == 0, (
        f"{' '.join(map(str, args))} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    for project in (REPO, SANDBOX_PROJECT):
        _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, project)
    files = {p.name: p for p in out.iterdir()}
    found = {}
    for key, prefix in (("provider", "airflow_provider_preservica-"), ("sandbox", "preservica_sandbox-")):
        found[f"{key}_wheel"] = next(p for n, p in files.items() if n.startswith(prefix) and n.endswith(".whl"))
        found[f"{key}_sdist"] = next(p for n, p in files.items() if n.startswith(prefix) and n.endswith(".tar.gz"))
    return found


def test_twine_check_passes_for_every_file(dist):
    result = _run(sys.executable, "-m", "twine", "check", "--strict", *dist.values())
    assert result.stdout.count("PASSED") == 4


def test_provider_wheel_holds_the_provider_only(dist):
    from airflow_provider_preservica import __version__

    names = zipfile.ZipFile(dist["provider_wheel"]).namelist()
    assert dist["provider_wheel"].name.startswith(f"airflow_provider_preservica-{__version__}-")
    outside = [n for n in names if not n.startswith(("airflow_provider_preservica/", "airflow_provider_preservica-"))]
    assert outside == []  # no tests/, benchmarks/, example_dags/, preservica_sandbox/
    assert not [n for n in names if "/tests/" in n or "benchmark" in n]
    # The old import path of the sandbox is one deprecation shim, not a copy of the emulator.
    assert [n for n in names if "sandbox" in n] == ["airflow_provider_preservica/sandbox.py"]
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(dist["provider_wheel"]).read(entry_points).decode()
    assert "apache_airflow_provider" in text and "preservica-sandbox" not in text


def test_sandbox_wheel_is_the_emulator_with_its_console_script(dist):
    names = zipfile.ZipFile(dist["sandbox_wheel"]).namelist()
    assert "preservica_sandbox/server.py" in names and "preservica_sandbox/__main__.py" in names
    assert not [n for n in names if n.startswith(("airflow_provider_preservica", "tests/"))]
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert (
        "preservica-sandbox = preservica_sandbox.server:main"
        in zipfile.ZipFile(dist["sandbox_wheel"]).read(entry_points).decode()
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_installed_wheels_run_an_example_dag_against_the_installed_sandbox(dist, tmp_path):
    import airflow

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    python, bin_dir = venv / "bin" / "python", venv / "bin"
    _run(
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        dist["provider_wheel"],
        dist["sandbox_wheel"],
        f"apache-airflow=={airflow.__version__}",
        timeout=900,
    )
    where = _run(python, "-c", "import airflow_provider_preservica as p; print(p.__file__)", cwd=tmp_path)
    assert str(venv) in where.stdout  # the wheel, not this checkout

    port = _free_port()
    sandbox = subprocess.Popen(
        [bin_dir / "preservica-sandbox", "--port", str(port), "--user", "robot:R0bot-release-pw:SANDBOX"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/_sandbox/stats", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        home = tmp_path / "airflow-home"
        env = {
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "HOME": str(tmp_path),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_PRESERVICA_DEFAULT": json.dumps(
                {
                    "conn_type": "preservica",
                    "host": base,
                    "login": "robot",
                    "password": "R0bot-release-pw",
                    "extra": {"tenant": "SANDBOX"},
                }
            ),
        }
        _run(bin_dir / "airflow", "db", "migrate", env=env, cwd=tmp_path)
        providers = _run(bin_dir / "airflow", "providers", "list", env=env, cwd=tmp_path).stdout
        from airflow_provider_preservica import __version__

        assert "airflow-provider-preservica" in providers and __version__ in providers
        run = _run(bin_dir / "airflow", "dags", "test", "preservica_token_check", env=env, cwd=tmp_path)
        assert "state=success" in run.stdout + run.stderr
        with urllib.request.urlopen(f"{base}/_sandbox/stats", timeout=5) as response:
            stats = json.load(response)
        assert stats["logins"] == {"robot": 1}  # eight parallel probes, one login, from the installed provider
    finally:
        sandbox.terminate()
        sandbox.wait(10)
