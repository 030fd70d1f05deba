"""Run every benchmark and print one Markdown table: measure | ours | reference | ratio.

Each benchmark runs as its own subprocess (``--json`` into a temporary folder; its full report goes to a log
there), one after the other, so none competes with another for the machine:

- ``token_reuse.py``: logins and auth time for N Airflow tasks (ours, the seed-style token file, pyPreservica per
  task) and for N OS processes released at once;
- ``search.py``: search report rows/s and memory against pyPreservica and a raw requests loop;
- ``metadata.py``: bulk metadata update rows/s (``update_metadata`` of a CSV sheet) against the pyPreservica
  ``asset()`` + ``save()`` loop and a raw requests loop, and the idempotent re-run;
- ``ingest.py``: SHA-256 hashing against ``sha256sum``, upload MiB/s and memory against pyPreservica and curl;
- ``export.py``: download MiB/s and memory against pyPreservica and curl;
- ``slot_seconds.py``: worker slot-seconds held waiting for a long ingest, deferrable against polling;
- ``faults.py``: the fault matrix (its own table is appended to ``--results``).

Ratio = ours / reference. Whether higher or lower is better is in the measure's name.

    .venv/bin/python -m benchmarks.run_all [--quick] [--results benchmarks/RESULTS.md] [--keep]

``--quick`` is a smoke run (a few minutes: small data, 10 s ingest); without it the full sizes run (50 tasks,
8 processes, 100,000 assets, 10,000 metadata rows, 1 GiB ingest, 2 GiB export, a 300 s ingest): 21-33 minutes on
2 CPUs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import harness

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Bench:
    name: str
    script: str
    full: tuple[str, ...]
    quick: tuple[str, ...]


BENCHES = [
    Bench("token_reuse", "token_reuse.py", ("--tasks", "50", "--parallel", "8"), ("--tasks", "5", "--parallel", "3")),
    Bench("search", "search.py", ("--assets", "100000"), ("--assets", "5000")),
    Bench("metadata", "metadata.py", ("--rows", "10000"), ("--rows", "1000")),
    Bench("ingest", "ingest.py", ("--size-mb", "1024", "--files", "8"), ("--size-mb", "32", "--files", "4")),
    Bench("export", "export.py", ("--size-mb", "2048"), ("--size-mb", "32")),
    Bench("slot_seconds", "slot_seconds.py", (), ("--quick",)),
    Bench("faults", "faults.py", (), ()),
]


@dataclass
class Row:
    measure: str
    ours: str
    reference: str
    ratio: str


def _num(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if value == 0:
        return "0"
    return f"{value:,.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"


def _ratio(ours: float | None, reference: float | None) -> str:
    if ours is None or reference is None or reference == 0:
        return "n/a"
    ratio = ours / reference
    return f"{ratio:.2f}" if ratio >= 0.1 else f"{ratio:.2g}"


def _row(measure: str, ours: float | None, reference: float | None, ref_label: str, unit: str = "") -> Row:
    suffix = f" {unit}" if unit else ""
    return Row(measure, f"{_num(ours)}{suffix}", f"{_num(reference)}{suffix} ({ref_label})", _ratio(ours, reference))


# --------------------------------------------------------------------------------------------- rows per benchmark
def _token_rows(data: dict[str, Any]) -> list[Row]:
    by = {r["key"]: r for r in data["results"]}
    tasks = data["tasks"]
    ours = by["ours_fresh"]  # each task as if in its own worker process: the token comes from the Variable
    rows = []
    for key, label in (("token_file", "seed-style token file"), ("pypreservica", "pyPreservica per task")):
        ref = by[key]
        rows.append(_row(f"Logins, {tasks} tasks (dag.test) (lower is better)", ours["logins"], ref["logins"], label))
        rows.append(
            _row(
                f"Auth time, {tasks} tasks, summed (lower is better)",
                ours["auth_total_s"],
                ref["auth_total_s"],
                label,
                "s",
            )
        )
    parallel = {r["key"]: r for r in data.get("parallel", [])}
    if "ours" in parallel:
        mine = parallel["ours"]
        for key, label in (("token_file", "seed-style token file"), ("pypreservica", "pyPreservica per process")):
            if key not in parallel:
                continue
            ref = parallel[key]
            n = mine["processes"]
            rows.append(_row(f"Logins, {n} processes at once (lower is better)", mine["logins"], ref["logins"], label))
            rows.append(
                _row(
                    f"Auth time, {n} processes at once, summed (lower is better)",
                    mine["auth_total_s"],
                    ref["auth_total_s"],
                    label,
                    "s",
                )
            )
    return rows


def _search_rows(data: dict[str, Any]) -> list[Row]:
    by = {r["key"]: r for r in data["results"]}
    assets = data["assets"]
    rows = []
    pairs = [
        ("ours_500", "pypreservica_50", "pyPreservica, both at their default page size"),
        ("ours_1000", "pypreservica_1000", "pyPreservica, page 1000"),
        ("ours_1000", "raw_1000", "raw requests loop, page 1000"),
    ]
    for mine, ref, label in pairs:
        if mine in by and ref in by:
            rows.append(
                _row(
                    f"Search report rows/s, {assets:,} assets (higher is better)",
                    by[mine]["rows_per_s"],
                    by[ref]["rows_per_s"],
                    label,
                )
            )
    for mine, ref, label in pairs[1:]:
        if mine in by and ref in by:
            rows.append(
                _row(
                    "Search report memory, RSS increase (lower is better)",
                    by[mine]["rss_peak_increase_mb"],
                    by[ref]["rss_peak_increase_mb"],
                    label,
                    "MB",
                )
            )
    return rows


def _metadata_rows(data: dict[str, Any]) -> list[Row]:
    by = {r["key"]: r for r in data["results"]}
    n = data["rows"]
    rows = []
    for mine, ref, label in (
        ("ours", "pypreservica", "pyPreservica asset() + save() loop"),
        ("ours", "raw", "raw requests GET + PUT loop"),
        ("ours_w1", "pypreservica", "pyPreservica loop"),
    ):
        if mine in by and ref in by:
            workers = by[mine]["workers"]
            rows.append(
                _row(
                    f"Metadata update rows/s, {n:,} rows, {workers} worker{'s' if workers > 1 else ''} "
                    "(higher is better)",
                    by[mine]["rows_per_s"],
                    by[ref]["rows_per_s"],
                    label,
                )
            )
    if "ours" in by and "pypreservica" in by:
        rows.append(
            _row(
                "Metadata update HTTP requests per row (lower is better)",
                by["ours"]["requests_per_row"],
                by["pypreservica"]["requests_per_row"],
                "pyPreservica loop",
            )
        )
        rows.append(
            _row(
                "Metadata update memory, RSS increase (lower is better)",
                by["ours"]["rss_peak_increase_mb"],
                by["pypreservica"]["rss_peak_increase_mb"],
                "pyPreservica loop",
                "MB",
            )
        )
    if "ours_rerun" in by:
        rows.append(
            Row(
                f"Metadata re-run rows/s, nothing to change, {n:,} rows (ours only)",
                _num(by["ours_rerun"]["rows_per_s"]),
                "-",
                "-",
            )
        )
    return rows


def _ingest_rows(data: dict[str, Any]) -> list[Row]:
    hashing = {r["key"]: r for r in data["hashing"]}
    uploads = {r["key"]: r for r in data["uploads"]}
    size = data["size_mb"]
    rows = [
        _row(
            f"SHA-256 hashing MiB/s, {size} MiB (higher is better)",
            hashing["hash_file"]["mib_per_s"],
            hashing["sha256sum"]["mib_per_s"],
            "sha256sum, one process",
        ),
        _row(
            f"SHA-256 hashing MiB/s, {size} MiB (higher is better)",
            hashing["hash_file"]["mib_per_s"],
            hashing["openssl"]["mib_per_s"],
            "openssl dgst -sha256",
        ),
        _row(
            f"SHA-256 hashing MiB/s, {size} MiB, parallel (higher is better)",
            hashing["hash_files"]["mib_per_s"],
            hashing["sha256sum_p"]["mib_per_s"],
            hashing["sha256sum_p"]["label"],
        ),
    ]
    ours = uploads["ours"]
    for key, label in (("pypreservica", "pyPreservica upload_zip_package"), ("curl", "curl -T, one PUT")):
        if key in uploads:
            rows.append(
                _row(
                    f"Upload MiB/s, {size} MiB package (higher is better)",
                    ours["mib_per_s"],
                    uploads[key]["mib_per_s"],
                    label,
                )
            )
    if "pypreservica" in uploads:
        rows.append(
            _row(
                "Upload memory, RSS increase (lower is better)",
                ours["rss_peak_increase_mb"],
                uploads["pypreservica"]["rss_peak_increase_mb"],
                "pyPreservica",
                "MB",
            )
        )
    if "curl" in uploads:
        rows.append(
            _row(
                "Upload memory, whole-process peak RSS (lower is better)",
                ours["rss_peak_mb"],
                uploads["curl"]["rss_peak_mb"],
                "curl",
                "MB",
            )
        )
    return rows


def _export_rows(data: dict[str, Any]) -> list[Row]:
    by = {r["key"]: r for r in data["results"]}
    size = data["size_mb"]
    ours = by["ours"]
    rows = []
    for key, label in (("pypreservica", "pyPreservica download_opex"), ("curl", "curl -o")):
        if key in by:
            rows.append(
                _row(
                    f"Download MiB/s, {size} MiB export (higher is better)",
                    ours["mib_per_s"],
                    by[key]["mib_per_s"],
                    label,
                )
            )
    if "pypreservica" in by:
        rows.append(
            _row(
                "Download memory, RSS increase (lower is better)",
                ours["rss_peak_increase_mb"],
                by["pypreservica"]["rss_peak_increase_mb"],
                "pyPreservica",
                "MB",
            )
        )
    if "curl" in by:
        rows.append(
            _row(
                "Download memory, whole-process peak RSS (lower is better)",
                ours["rss_peak_mb"],
                by["curl"]["rss_peak_mb"],
                "curl",
                "MB",
            )
        )
    if "curl" in by and ours.get("cache_mb") is not None and by["curl"].get("cache_mb") is not None:
        rows.append(
            _row(
                f"Download page cache left, {size} MiB export (lower is better)",
                ours["cache_mb"],
                by["curl"]["cache_mb"],
                "curl",
                "MB",
            )
        )
    if "verify" in by:
        rows.append(
            Row("Export verification MiB/s (zip CRCs + fixities; ours only)", _num(by["verify"]["mib_per_s"]), "-", "-")
        )
    return rows


def _slot_rows(data: dict[str, Any]) -> list[Row]:
    by = {r["mode"]: r for r in data["results"]}
    t = data["ingest_seconds"]
    return [
        _row(
            f"Worker slot-seconds waiting for a {t:g} s ingest (lower is better)",
            by["deferrable"]["slot_s"],
            by["polling"]["slot_s"],
            "polling, deferrable=False",
            "s",
        )
    ]


def _fault_rows(data: list[dict[str, Any]]) -> list[Row]:
    expected = sum(1 for o in data if o["as_expected"])
    known = sum(1 for o in data if o["known_issue"])
    note = f" ({known} known issue)" if known else ""
    return [Row(f"Fault scenarios behaving as expected{note}", f"{expected}/{len(data)}", "-", "-")]


ROWS: dict[str, Callable[[Any], list[Row]]] = {
    "token_reuse": _token_rows,
    "search": _search_rows,
    "metadata": _metadata_rows,
    "ingest": _ingest_rows,
    "export": _export_rows,
    "slot_seconds": _slot_rows,
    "faults": _fault_rows,
}


# --------------------------------------------------------------------------------------------- machine, running
def _read(path: str, prefix: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def machine() -> dict[str, str]:
    uname = subprocess.run(["uname", "-srm"], capture_output=True, text=True).stdout.strip()
    mem_kb = _read("/proc/meminfo", "MemTotal")
    try:
        ram = f"{int(mem_kb.split()[0]) / 1024 / 1024:.1f} GiB"
    except (ValueError, IndexError):
        ram = "?"
    try:
        import airflow

        airflow_version = airflow.__version__
    except ImportError:
        airflow_version = "?"
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "uname": uname,
        "cpu": _read("/proc/cpuinfo", "model name"),
        "cores": str(os.cpu_count()),
        "ram": ram,
        "python": platform.python_version(),
        "airflow": airflow_version,
    }


def _run(bench: Bench, quick: bool, out: Path) -> tuple[Any, float, int]:
    json_path = out / f"{bench.name}.json"
    log_path = out / f"{bench.name}.log"
    meta = {"started": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "load": os.getloadavg()[1]}
    command = [
        sys.executable,
        "-m",
        f"benchmarks.{Path(bench.script).stem}",
        *(bench.quick if quick else bench.full),
        "--json",
        str(json_path),
    ]
    started = time.perf_counter()
    with log_path.open("wb") as log:
        code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=HERE.parent).returncode
    seconds = time.perf_counter() - started
    data = json.loads(json_path.read_text(encoding="utf-8")) if json_path.exists() else None
    meta.update(seconds=round(seconds), exit=code)
    (out / f"{bench.name}.meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return data, seconds, code


def markdown(rows: list[Row]) -> str:
    return harness.markdown_table(
        ["measure", "ours", "reference", "ratio"], "lrrr", [(r.measure, r.ours, r.reference, r.ratio) for r in rows]
    )


def main(argv: list[str] | None = None) -> int:
    parser = harness.parser(__doc__, json_help=None, keep="the folder with every benchmark's JSON and log")
    parser.add_argument("--quick", action="store_true", help="a smoke run with small data (a few minutes)")
    parser.add_argument("--only", help="comma-separated benchmark names (default: all)")
    parser.add_argument("--results", type=Path, help="also write a Markdown page (machine, table, fault matrix)")
    parser.add_argument(
        "--out",
        type=Path,
        help="folder for every benchmark's JSON and log (kept); a benchmark whose JSON is already there is not run"
        " again, so a run that stopped half-way can be completed",
    )
    args = parser.parse_args(argv)
    chosen = [b for b in BENCHES if not args.only or b.name in args.only.split(",")]
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        args.keep = True
    out = args.out or Path(tempfile.mkdtemp(prefix="preservica-bench-all-"))
    rows: list[Row] = []
    runs: list[str] = []
    failures: list[str] = []
    fault_table = ""
    total = time.perf_counter()
    load_before = os.getloadavg()
    for bench in chosen:
        print(f"-> {bench.script} {' '.join(bench.quick if args.quick else bench.full)}", file=sys.stderr, flush=True)
        done = out / f"{bench.name}.json"
        if args.out and done.exists():
            data, seconds, code = json.loads(done.read_text(encoding="utf-8")), 0.0, 0
            print("   results already there, not run again", file=sys.stderr, flush=True)
        else:
            data, seconds, code = _run(bench, args.quick, out)
        print(f"   {'done' if code == 0 else f'exit {code}'} in {seconds:.0f} s", file=sys.stderr, flush=True)
        if data is None:
            failures.append(f"{bench.name}: no results (exit {code}; log {out / (bench.name + '.log')})")
            rows.append(Row(f"{bench.name}: did not finish", "-", "-", "-"))
            continue
        meta_path = out / f"{bench.name}.meta.json"
        if meta_path.exists():
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            runs.append(
                f"`{bench.script}`: started {meta['started']}, {meta['seconds']} s, 5-minute load average "
                + (f"{meta['load']:.1f}" if meta.get("load") is not None else "not recorded")
                + " at its start"
            )
        if code != 0:
            failures.append(f"{bench.name}: exit {code} (log {out / (bench.name + '.log')})")
        rows += ROWS[bench.name](data)
        if bench.name == "faults":
            log = (out / "faults.log").read_text(encoding="utf-8", errors="replace")
            start = log.find("| scenario |")
            fault_table = log[start:].strip() if start >= 0 else ""
    info = machine()
    load_after = os.getloadavg()
    load = f"load average {load_before[1]:.1f} before, {load_after[1]:.1f} after (5-minute)"
    busy = max(load_before[1], load_after[1]) > (os.cpu_count() or 1)
    mode = "quick (smoke) run" if args.quick else "full run"
    heading = (
        f"Benchmarks, {mode}, {info['date']}: {info['uname']}; {info['cpu']}, {info['cores']} cores, "
        f"{info['ram']} RAM; Python {info['python']}, Airflow {info['airflow']}; {load}"
    )
    table = markdown(rows)
    print(heading + "\n")
    print(table)
    print(
        f"\nAll benchmarks: {time.perf_counter() - total:.0f} s; JSON and logs in {out}"
        + ("" if args.keep else " (removed)")
    )
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    if args.results:
        page = [
            "# Benchmark results",
            "",
            f"Produced by `python -m benchmarks.run_all{' --quick' if args.quick else ''}` ({mode}).",
            "",
            f"- Date: {info['date']}",
            f"- Machine: `{info['uname']}`, {info['cpu']}, {info['cores']} cores, {info['ram']} RAM",
            f"- Python {info['python']}, Airflow {info['airflow']}",
            f"- Machine load during the run: {load}"
            + (" (other jobs shared the machine; see the note below)" if busy else " (a quiet machine)"),
            "",
            "Ratio = ours / reference; each measure says whether higher or lower is better. The sandbox runs on the",
            "same machine as the client, so transfer rates measure the client and the emulator together. With a",
            "5-minute load average above the number of cores, absolute times are inflated, and as the contenders of",
            "a measure run one after the other, a change of load between them shifts the ratio too: repeat the run",
            "on a quiet machine before reading small differences.",
            "",
            table,
            "",
            "Runs:",
            "",
            *[f"- {run}" for run in runs],
        ]
        if fault_table:
            page += ["", "## Fault matrix (`python -m benchmarks.faults`)", "", fault_table]
        args.results.write_text("\n".join(page) + "\n", encoding="utf-8")
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    harness.run(main)
