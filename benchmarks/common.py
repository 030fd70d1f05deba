"""Helpers shared by the benchmarks: peak-memory readings, subprocesses, CPU load, formatting.

The benchmarks run as modules from the repository's root (``python -m benchmarks.x``); what every ``main()``
shares is in ``benchmarks.harness``, the sandbox launcher in ``tests.support.sandbox_process``.
"""

from __future__ import annotations

import datetime as dt
import gc
import importlib
import json
import os
import platform
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tests.support.sandbox_process import SandboxProcess as SandboxProcess  # the benchmarks' sandbox

STATUS_NS = "{http://status.preservica.com}"
ROOT = Path(__file__).resolve().parent.parent
CONN_ID = "preservica_default"
TEST_FERNET_KEY = "5bVSQmY6mzQ0aOJQy8b3bR1QhXdY0vYk7b8yV3xEJ0A="  # a throw-away Airflow home's, not a secret


def _prepare_environment(
    tmp: Path,
    *,
    database: bool = False,
    dags_folder: Path | None = None,
    clear_prefixes: tuple[str, ...] = (),
) -> None:
    """Airflow reads its configuration at import time: set everything before it is imported.

    ``database``: a SQLite metadata database in the temporary Airflow home (for ``dag.test``), with a DAGs
    folder (``dags_folder``, or an empty one in the home) and a Fernet key. ``clear_prefixes``: more
    environment variables to drop, beside the Preservica Connections and Variables a shell may hold.
    """
    home = tmp / "airflow-home"
    home.mkdir()
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    if database:
        dags = dags_folder or home / "dags"
        dags.mkdir(parents=True, exist_ok=True)
        os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home}/airflow.db"
        os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags)
        os.environ["AIRFLOW__CORE__FERNET_KEY"] = TEST_FERNET_KEY
    os.environ["PRESERVICA_LOCK_DIR"] = str(tmp)
    os.environ.pop("PRESERVICA_INI", None)
    for name in list(os.environ):
        if name.startswith(("AIRFLOW_CONN_PRESERVICA", "AIRFLOW_VAR_PRESERVICA", *clear_prefixes)):
            del os.environ[name]


def _point_at(base_url: str, user: dict[str, str]) -> dict[str, str]:
    """The Connection our hook reads (subprocesses inherit it); returns the account for the other methods."""
    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(
        {
            "conn_type": "preservica",
            "host": base_url,
            "login": user["name"],
            "password": user["password"],
            "extra": {"tenant": user["tenant"]},
        }
    )
    return {
        "url": base_url,
        "server": base_url.split("://", 1)[1],
        "user": user["name"],
        "password": user["password"],
        "tenant": user["tenant"],
    }


def _status_kb(name: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{name} not in /proc/self/status")


def _reset_hwm() -> bool:
    """Set VmHWM to the current RSS (Linux: ``echo 5 > /proc/self/clear_refs``); False when refused."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def _finished(client: Any, token: str) -> tuple[str, float]:
    """Status and the ``Finished`` time (epoch seconds) of a progress token."""
    root = client.get_xml(f"/api/entity/progress/{token}")
    status = (root.findtext(f".//{STATUS_NS}Status") or "").strip()
    text = (root.findtext(f".//{STATUS_NS}Finished") or "").strip()
    moment = dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)
    return status, moment.timestamp()


def _spawn(command: list[str], log_path: Path, cwd: Path | None = None) -> tuple[int, float]:
    """Run ``command`` with its output in ``log_path``; returns exit code and wall seconds."""
    started = time.perf_counter()
    with log_path.open("wb") as log:
        code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=cwd).returncode
    return code, time.perf_counter() - started


def _fail(what: str, code: int, log_path: Path) -> RuntimeError:
    sys.stderr.write(log_path.read_text(encoding="utf-8", errors="replace")[-4000:])
    return RuntimeError(f"{what} failed with exit code {code} (log {log_path})")


def _requests_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    delta = Counter(after)
    delta.subtract(before)
    return {route: n for route, n in sorted(delta.items()) if n}


def _curl_version() -> str:
    done = subprocess.run(["curl", "--version"], capture_output=True, text=True)
    return done.stdout.split()[1] if done.returncode == 0 and done.stdout else "?"


def _cpu_busy(seconds: float = 1.0) -> float:
    """Share of all CPUs' time spent busy (not idle, not waiting for I/O) over ``seconds``, from /proc/stat."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as stat:
            values = [int(v) for v in stat.readline().split()[1:]]
        return sum(values), values[3] + values[4]

    total, idle = sample()
    time.sleep(seconds)
    total_after, idle_after = sample()
    elapsed = total_after - total
    return 1.0 - (idle_after - idle) / elapsed if elapsed else 0.0


SETTLE_SECONDS = 6.0


def _settle(seconds: float = SETTLE_SECONDS) -> None:
    """Flush dirty pages, then wait, so that every measured method starts from the same memory state.

    On a virtual machine with virtio-balloon free page reporting (this project's machines and CI have it),
    memory freed a moment ago (the previous method's download, deleted) is cheap to reuse for about two
    seconds; after that the guest hands it back to the host, and touching it again costs a host page fault per
    page: writing 2 GiB into the page cache then takes 4 to 6 s of system time instead of about 1. Without
    the pause, whichever method runs right after a deletion gets the cheap pages; with it, none does.
    """
    os.sync()
    time.sleep(seconds)


def _free_page_reporting() -> bool | None:
    """Whether a virtio balloon reports free pages to the host (feature bit 5); None when no balloon is seen."""
    for device in Path("/sys/bus/virtio/devices").glob("*"):
        try:
            if (device / "device").read_text(encoding="ascii").strip() != "0x0005":
                continue
            features = (device / "features").read_text(encoding="ascii").strip()
        except OSError:
            continue
        return len(features) > 5 and features[5] == "1"
    return None


def _busy(client_cpu: float, sandbox_cpu: float, seconds: float, cpus: int) -> float:
    return (client_cpu + sandbox_cpu) / (cpus * seconds) if seconds else 0.0


def _mb(value: float | None, width: int) -> str:
    return f"{value:>{width}.1f}" if value is not None else f"{'n/a':>{width}}"


def _ratio(numerator: float | None, denominator: float | None) -> str:
    if numerator is None or not denominator:
        return "n/a"
    return f"{numerator / denominator:.3g}"


def _machine_info(busy_at_start: float | None = None, **extra: Any) -> dict[str, Any]:
    """Date, machine and the versions every benchmark reports; ``extra`` adds the benchmark's own."""
    import airflow
    import pyPreservica

    meminfo = Path("/proc/meminfo").read_text(encoding="ascii").split()
    info: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "memory_gb": round(int(meminfo[meminfo.index("MemTotal:") + 1]) / 2**20, 1),
        "python": platform.python_version(),
        "airflow": airflow.__version__,
        "pypreservica": pyPreservica.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
    }
    if busy_at_start is not None:
        info["busy_at_start"] = busy_at_start
    return {**info, **extra}


Method = Callable[[dict[str, Any]], dict[str, Any]]


def _measured_child(spec_path: str, methods: Mapping[str, Method], imports: Mapping[str, list[str]]) -> int:
    """The child side of a measured run: import, reset the memory high-water mark, time the method, write JSON.

    The spec (JSON at ``spec_path``) names the ``method`` and the ``result`` file; the result holds seconds and
    CPU seconds of the call, the VmHWM readings (after the imports, after the reset, after the run), its
    start and end as epoch seconds, and whatever the method returned.
    """
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    method = spec["method"]
    for module in imports[method]:
        importlib.import_module(module)
    gc.collect()
    imports_hwm_kb = _status_kb("VmHWM")
    hwm_reset = _reset_hwm()
    baseline_kb = _status_kb("VmHWM")
    started_epoch = time.time()
    started = time.perf_counter()
    cpu_started = time.process_time()
    info = methods[method](spec)
    seconds = time.perf_counter() - started
    cpu_s = time.process_time() - cpu_started
    ended_epoch = time.time()
    result = {
        "seconds": seconds,
        "cpu_s": cpu_s,
        "started_epoch": started_epoch,
        "ended_epoch": ended_epoch,
        "baseline_hwm_kb": baseline_kb,
        "hwm_kb": _status_kb("VmHWM"),
        "hwm_reset": hwm_reset,
        "imports_hwm_kb": imports_hwm_kb,
        **info,
    }
    Path(spec["result"]).write_text(json.dumps(result), encoding="utf-8")
    return 0


def _run_measured(script: Path, name: str, spec: dict[str, Any], tmp: Path, what: str | None = None) -> dict[str, Any]:
    """Run the benchmark ``script`` (``python -m benchmarks.<its name> --child``) on ``spec`` in a fresh process
    (parent side of :func:`_measured_child`).

    ``name`` names the spec, result and log files in ``tmp``; ``what`` is said when it fails.
    """
    spec_path = tmp / f"{name}.spec.json"
    result_path = tmp / f"{name}.result.json"
    spec_path.write_text(json.dumps({**spec, "result": str(result_path)}), encoding="utf-8")
    log_path = tmp / f"{name}.log"
    module = f"benchmarks.{script.stem}"  # run from the repository's root, as the parent is
    code, wall = _spawn([sys.executable, "-m", module, "--child", str(spec_path)], log_path, cwd=ROOT)
    if code != 0 or not result_path.exists():
        raise _fail(what or name, code, log_path)
    child = json.loads(result_path.read_text(encoding="utf-8"))
    # Its own peak: the import peak (before the reset) or the run's, whichever is higher. (ru_maxrss from wait4
    # would not do: Linux copies the spawning process's high-water mark into it at exec.)
    child.update(wall_s=wall, peak_kb=max(child["imports_hwm_kb"], child["hwm_kb"]))
    return child
