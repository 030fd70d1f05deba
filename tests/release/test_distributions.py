"""The two distributions as users get them: built, checked, and installed from the wheels into a clean venv.

Builds ``airflow-provider-preservica`` (this folder) and ``preservica-sandbox`` (``sandbox/``) with
``python -m build``, checks them with ``twine check --strict``, looks inside the provider wheel, then
installs both wheels (not the editable checkout) with the same Airflow and nothing else into a new venv, with uv
(their declared dependencies are all they get: a missing one fails here, as it would for a user) and runs three example
DAGs there (token check, nightly ingest, export) against a sandbox started from the installed console script.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests.support import REPO

pytestmark = pytest.mark.release

SANDBOX_PROJECT = REPO / "sandbox"


def _run(*args: str | os.PathLike[str], timeout: float = 600, **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, **kwargs)
    errors = [line for line in (result.stdout + result.stderr).splitlines() if "Error:" in line][:10]
    assert result.returncode == 0, (
        f"{' '.join(map(str, args))} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}\n"
        + "\n".join(["errors:", *errors])
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


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what would let the venv see this checkout or the dev venv."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(extra)
    return env


def _uv() -> str:
    """The ``uv`` of this venv (the dev extra installs it beside this Python), else the one on ``PATH``."""
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    assert uv, "uv is not installed: it comes with the dev extra (pip install -e './sandbox' -e '.[dev]')"
    return uv


#: The example DAGs run here; only these are parsed by every ``airflow`` command (the others cost seconds each).
RELEASE_EXAMPLES = ("preservica_token_check.py", "preservica_nightly_ingest.py", "preservica_export_collection.py")


@pytest.mark.timeout(1200)  # an install of Airflow and three DAG runs: minutes on a loaded 2-CPU machine
def test_installed_wheels_ingest_and_export_against_the_installed_sandbox(dist, tmp_path):
    """A plain install (Airflow + the two wheels and their declared dependencies, no dev extras) runs the
    token check, the nightly ingest (build, S3 upload, deferred wait, verification) and the export."""
    import airflow

    venv = tmp_path / "venv"
    python, bin_dir = venv / "bin" / "python", venv / "bin"
    # uv, not pip: the same clean install (a new venv holding nothing but what the two wheels and Airflow declare,
    # resolved from their metadata alone), in a fraction of pip's time on 2 CPUs. uv compiles no bytecode.
    uv = _uv()
    _run(uv, "venv", "--quiet", "--no-config", "--python", sys.executable, venv, env=_clean_env())
    _run(
        uv,
        "pip",
        "install",
        "--quiet",
        "--no-config",
        "--python",
        python,
        dist["provider_wheel"],
        dist["sandbox_wheel"],
        f"apache-airflow=={airflow.__version__}",
        timeout=900,
        env=_clean_env(),
    )
    where = _run(
        python, "-c", "import airflow_provider_preservica as p; print(p.__file__)", cwd=tmp_path, env=_clean_env()
    )
    assert str(venv) in where.stdout  # the wheel, not this checkout

    port = _free_port()
    sandbox = subprocess.Popen(
        [bin_dir / "preservica-sandbox", "--port", str(port), "--user", "robot:R0bot-release-pw:SANDBOX"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_clean_env(),
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/_sandbox/stats", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        urllib.request.urlopen(
            urllib.request.Request(
                f"{base}/_sandbox/config",
                data=json.dumps({"ingest_seconds": 0.2, "export_seconds": 0.2}).encode(),
                headers={"Content-Type": "application/json"},
            ),
            timeout=5,
        )
        home = tmp_path / "airflow-home"
        dags = tmp_path / "dags"
        dags.mkdir()
        for name in RELEASE_EXAMPLES:
            shutil.copy(REPO / "example_dags" / name, dags / name)
        landing, reports, exports = tmp_path / "landing", tmp_path / "reports", tmp_path / "exports"
        delivery = landing / "2026-11-25"
        (delivery / "letters").mkdir(parents=True)
        (delivery / "report.pdf").write_bytes(b"%PDF-1.4 release tier" * 100)
        (delivery / "letters" / "scan-001.tif").write_bytes(b"II*\x00 release tier" * 100)
        env = {
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "HOME": str(tmp_path),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # The example DAGs retry (retries=2): a broken install fails in seconds, not after 2 x 5 minutes.
            "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "1",
            "AIRFLOW_VAR_PRESERVICA_LANDING_DIR": str(landing),
            "AIRFLOW_VAR_PRESERVICA_REPORTS_DIR": str(reports),
            "AIRFLOW_VAR_PRESERVICA_EXPORT_DIR": str(exports),
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

        ingest = _run(
            bin_dir / "airflow", "dags", "test", "preservica_nightly_ingest", "2026-11-25", env=env, cwd=tmp_path
        )
        assert "state=success" in ingest.stdout + ingest.stderr
        summary = (reports / "ingest-2026-11-25.txt").read_text()
        assert "2 files (2 created)" in summary, summary
        assert sorted(p.name for p in (landing / "done" / "2026-11-25").rglob("*") if p.is_file()) == [
            "report.pdf",
            "scan-001.tif",
        ]
        folder = re.search(r"parent folder\s*: (\S+)", summary)
        assert folder is not None, summary

        export = _run(
            bin_dir / "airflow",
            "dags",
            "test",
            "preservica_export_collection",
            "2026-11-25",
            "-c",
            json.dumps({"collection_ref": folder.group(1)}),
            env=env,
            cwd=tmp_path,
        )
        output = export.stdout + export.stderr
        assert "state=success" in output
        checked = re.search(r"Exported \S+collection-\S+\.zip: [\d,]+ bytes, \d+ files, (\d+) checked against", output)
        assert checked is not None and checked.group(1) == "2", output[-3000:]  # both files, fixity as ingested
    finally:
        sandbox.terminate()
        sandbox.wait(10)
