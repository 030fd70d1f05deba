"""Helpers shared by the benchmarks: peak-memory readings, subprocesses, CPU load, formatting.

The benchmarks run as scripts (``python benchmarks/x.py``), so this module is imported as ``common``.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

STATUS_NS = "{http://status.preservica.com}"


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


def _busy(client_cpu: float, sandbox_cpu: float, seconds: float, cpus: int) -> float:
    return (client_cpu + sandbox_cpu) / (cpus * seconds) if seconds else 0.0


def _mb(value: float | None, width: int) -> str:
    return f"{value:>{width}.1f}" if value is not None else f"{'n/a':>{width}}"
