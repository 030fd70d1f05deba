"""Bulk metadata update of N assets: ours (``update_metadata`` of a CSV sheet) vs the pyPreservica loop vs raw requests.

One run seeds a local Preservica sandbox, started as a separate process (``python -m
preservica_sandbox``) so that the client is measured alone, with ``--rows`` assets (default
10,000; ``POST /_sandbox/seed {"assets": N, "random_seed": 42}``), and writes one CSV sheet
(``reference,title,description``) giving every seeded asset a new title and a new description. The same sheet is
then applied several ways, each in a fresh subprocess, each on a freshly re-seeded repository (the same seed, so
the same state, checked: the sandbox's ``repository.jsonl`` has the same SHA-256 after every seed), so that each
method really changes every row:

- ours: ``PreservicaHook(conn_id).update_metadata(sheet_path)`` (what ``PreservicaMetadataOperator`` runs: the sheet
  read and checked, every entity read (GET), the writes planned, then only what differs written (PUT of title
  and description), ``max_workers`` rows at once over one pooled session and one token), at the default
  ``max_workers=8``, and at 1 and 16, so that the gain from the threads and the cost of our extra work are visible;
- ours, dry run: ``update_metadata(sheet_path, dry_run=True)`` first, on the fresh repository: every row read
  and planned, nothing written (checked: no PUT, the repository as seeded);
- ours, re-run: the same sheet once more on the repository ours has just updated (no re-seed): every row is read
  and found as wanted, nothing is written;
- pyPreservica: the loop users write today: ``EntityAPI(...)`` (its constructor logs in and reads the server
  version and the user details), the sheet read with ``csv.DictReader``, then for each row
  ``a = client.asset(ref); a.title = ...; a.description = ...; client.save(a)``;
- raw requests: a hand-written floor: one ``requests.Session``, a login, then for each row a GET of the asset, its
  ``InformationObject`` element's Title and Description set with ``xml.etree``, and a PUT of that element.

After each method the parent reads the sandbox's repository back (``POST /_sandbox/repository/save``, then its
``repository.jsonl``) and counts the assets whose title or description is not the sheet's, and every folder or
asset property (other than the wanted title and description and the modified time) that differs from the seed:
a method that did other work than asked, or less, shows as mismatches (and the benchmark fails).

Without latency (the default) every request is a loopback round trip, and the client's own CPU time per request
(requests, urllib3, http.client: one Python thread at a time) sets the pace; the report gives that bound.
``--latency-ms M`` adds M ms to every entity GET and PUT (a sandbox ``latency`` fault, which waits without using
the CPU), as a remote Preservica would: then the threads show what they buy.

Time and memory as in ``export.py``: seconds = the method's call in its fresh subprocess, imports excluded, login
included; RSS +MB = VmHWM after the run minus VmHWM just after the imports; peak MB = the process's whole peak.
Requests and logins are the sandbox's own counters (``GET /_sandbox/stats``). Speed is measured and reported,
never asserted: the benchmark fails only when a method did the wrong work.

    .venv/bin/python -m benchmarks.metadata [--rows 10000] [--latency-ms 0] [--json results.json]

For memory at archive scale, ``--rows 100000 --memory`` runs only ours (dry run and apply), pyPreservica and raw
requests, and reports each one's peak RSS growth (a run holds no per-row state: the sheet is streamed and
each row's plan waits on disk, so ours should stay flat, well under 100 MB of growth).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import harness
from benchmarks.common import (
    CONN_ID,
    SETTLE_SECONDS,
    SandboxProcess,
    _busy,
    _cpu_busy,
    _machine_info,
    _mb,
    _measured_child,
    _point_at,
    _prepare_environment,
    _ratio,
    _requests_delta,
    _run_measured,
    _settle,
)

HERE = Path(__file__).resolve()
USER = {"name": "bench", "password": "bench-pw-123", "tenant": "BENCH"}
RANDOM_SEED = 42
SPEED_GOAL = 2.0  # ours (default workers) / pyPreservica rows/s
REPOSITORY_FILE = "repository.jsonl"
ENTITY_ROUTES = ("GET /api/entity/*", "PUT /api/entity/*")  # what --latency-ms slows down
COMPARED_FIELDS = ("type", "security_tag", "parent", "created", "identifiers", "metadata", "source_id", "custom_type")

# (key, method, max_workers, reseed before, label)
CONFIGS: list[tuple[str, str, int, bool, str]] = [
    ("ours_dry", "ours_dry", 8, False, "ours update_metadata dry run"),
    ("ours", "ours", 8, True, "ours update_metadata"),
    ("ours_rerun", "ours", 8, False, "ours re-run (nothing to do)"),
    ("pypreservica", "pypreservica", 1, True, "pyPreservica asset+save loop"),
    ("raw", "raw", 1, True, "raw requests GET+PUT loop"),
    ("ours_w1", "ours", 1, True, "ours update_metadata"),
    ("ours_w16", "ours", 16, True, "ours update_metadata"),
]
MEMORY_KEYS = ("ours_dry", "ours", "pypreservica", "raw")  # --memory: what a large sheet is measured with


@dataclass
class RunResult:
    key: str
    method: str
    label: str
    workers: int
    rows: int
    seconds: float
    rows_per_s: float
    requests: int
    requests_per_row: float
    logins: int
    requests_by_route: dict[str, int]
    cpu_s: float
    sandbox_cpu_s: float
    rss_peak_mb: float | None
    rss_peak_increase_mb: float | None
    rss_after_imports_mb: float | None
    outcomes: dict[str, int]
    wanted: int  # assets with the sheet's title and description afterwards
    mismatches: int  # assets without them
    other_changes: int  # entity properties the sheet did not ask to change that differ from the seed
    hwm_reset: bool | None
    child: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- the measured methods (child side)
def _ours(spec: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_preservica.hooks.preservica import PreservicaHook

    dry_run = spec["method"] == "ours_dry"
    run = PreservicaHook(CONN_ID).update_metadata(spec["sheet"], max_workers=spec["workers"], dry_run=dry_run)
    failed = [f"row {o.row} {o.locator}: {o.outcome.value}: {o.message}" for o in run.first_failed(20)]
    return {
        "rows": run.rows,
        "outcomes": {outcome.value: n for outcome, n in sorted(run.counts().items())},
        "failed": failed[:20],
        "held_back": run.held_back,
        "pending": len(run.pending),
    }


def _pypreservica(spec: dict[str, Any]) -> dict[str, Any]:
    from pyPreservica import EntityAPI

    env = spec["env"]
    client = EntityAPI(
        username=env["user"], password=env["password"], tenant=env["tenant"], server=env["server"], protocol="http"
    )
    rows = 0
    with open(spec["sheet"], newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            asset = client.asset(row["reference"])
            asset.title = row["title"]
            asset.description = row["description"]
            client.save(asset)
            rows += 1
    return {"rows": rows, "outcomes": {"saved": rows}}


def _raw(spec: dict[str, Any]) -> dict[str, Any]:
    import xml.etree.ElementTree as ET

    import requests

    env = spec["env"]
    url = env["url"]
    rows = 0
    with requests.Session() as session, open(spec["sheet"], newline="", encoding="utf-8") as handle:
        form = {"username": env["user"], "password": env["password"], "tenant": env["tenant"]}
        response = session.post(f"{url}/api/accesstoken/login", data=form)
        response.raise_for_status()
        session.headers["Preservica-Access-Token"] = response.json()["token"]
        put_headers = {"Content-Type": "application/xml;charset=UTF-8"}
        for row in csv.DictReader(handle):
            entity_url = f"{url}/api/entity/information-objects/{row['reference']}"
            response = session.get(entity_url)
            response.raise_for_status()
            root = ET.fromstring(response.content)
            asset = next(e for e in root.iter() if e.tag.endswith("}InformationObject"))
            ns = asset.tag[1:].split("}", 1)[0]
            title = asset.find(f"{{{ns}}}Title")
            assert title is not None
            title.text = row["title"]
            description = asset.find(f"{{{ns}}}Description")
            if description is None:  # an empty description is left out of the response
                description = ET.Element(f"{{{ns}}}Description")
                asset.insert(list(asset).index(title) + 1, description)
            description.text = row["description"]
            response = session.put(entity_url, data=ET.tostring(asset, encoding="utf-8"), headers=put_headers)
            response.raise_for_status()
            rows += 1
    return {"rows": rows, "outcomes": {"saved": rows}}


METHODS = {"ours": _ours, "ours_dry": _ours, "pypreservica": _pypreservica, "raw": _raw}
IMPORTS = {
    "ours": ["airflow_provider_preservica.hooks.preservica", "airflow_provider_preservica.metadata.apply"],
    "ours_dry": ["airflow_provider_preservica.hooks.preservica", "airflow_provider_preservica.metadata.apply"],
    "pypreservica": ["pyPreservica"],
    "raw": ["requests", "xml.etree.ElementTree"],
}


# --------------------------------------------------------------------------- parent side
def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = harness.parser(__doc__, keep="the temporary directory (sheet, logs)", child=True)
    parser.add_argument("--rows", type=int, default=10_000, help="assets to seed and sheet rows (default 10000)")
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="milliseconds the sandbox adds to every entity GET and PUT, as a remote server would (default 0)",
    )
    parser.add_argument(
        "--memory",
        action="store_true",
        help="only ours (dry run and apply), pyPreservica and raw requests, for a large --rows such as 100000: "
        "the peak RSS growth of each (skips the 1- and 16-worker runs and the re-run)",
    )
    parser.add_argument(
        "--settle-seconds",
        type=float,
        default=SETTLE_SECONDS,
        help=f"pause after sync before each method (default {SETTLE_SECONDS:.0f}; see common._settle)",
    )
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    if args.latency_ms < 0:
        parser.error("--latency-ms must be >= 0")
    return args


def _records(sandbox: SandboxProcess) -> tuple[dict[str, dict[str, Any]], str]:
    """The sandbox's repository as it is now (ref -> record, from ``repository.jsonl``) and that file's SHA-256."""
    sandbox.control("POST", "/repository/save")
    data = (sandbox.data_dir / REPOSITORY_FILE).read_bytes()
    records: dict[str, dict[str, Any]] = {}
    for line in data.splitlines():
        record = json.loads(line) if line.strip() else None
        if isinstance(record, dict) and "ref" in record:
            records[record["ref"]] = record
    return records, hashlib.sha256(data).hexdigest()


def _seed(sandbox: SandboxProcess, rows: int) -> tuple[dict[str, dict[str, Any]], str, float]:
    started = time.perf_counter()
    answer = sandbox.control("POST", "/seed", {"assets": rows, "random_seed": RANDOM_SEED})
    seconds = time.perf_counter() - started
    if answer["repository"]["assets"] != rows:
        raise RuntimeError(f"the sandbox was seeded with {answer['repository']['assets']} assets, not {rows}")
    records, digest = _records(sandbox)
    return records, digest, seconds


def _write_sheet(path: Path, seeded: dict[str, dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """A sheet giving every asset a new title and description (both differ from the seed's); ref -> wanted."""
    wanted: dict[str, tuple[str, str]] = {}
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["reference", "title", "description"])
        for number, record in enumerate((r for r in seeded.values() if r["type"] == "IO"), start=1):
            title = f"{record['title']} [revised {number:06d}]"
            description = f"Catalogue entry checked in the 2026 audit (row {number}); was: {record['description']!r}"
            writer.writerow([record["ref"], title, description])
            wanted[record["ref"]] = (title, description)
    return wanted


def _check(
    now: dict[str, dict[str, Any]], seeded: dict[str, dict[str, Any]], wanted: dict[str, tuple[str, str]]
) -> tuple[int, int, list[str]]:
    """Assets holding the wanted title and description, entity properties changed that were not asked for, and
    the first mismatches in words."""
    good = other = 0
    problems: list[str] = []
    if set(now) != set(seeded):
        gone, new = set(seeded) - set(now), set(now) - set(seeded)
        other += len(gone) + len(new)
        problems.append(f"{len(gone)} entities gone, {len(new)} new")
    for ref, before in seeded.items():
        after = now.get(ref)
        if after is None:
            continue
        if ref in wanted:
            title, description = wanted[ref]
            if after["title"] == title and after["description"] == description:
                good += 1
            elif len(problems) < 10:
                problems.append(
                    f"{ref}: title {after['title']!r} description {after['description']!r}, wanted {title!r} / "
                    f"{description!r}"
                )
        else:
            for name in ("title", "description"):
                if after.get(name) != before.get(name):
                    other += 1
                    if len(problems) < 10:
                        problems.append(f"{ref} (folder): {name} {before.get(name)!r} -> {after.get(name)!r}")
        for name in COMPARED_FIELDS:
            if after.get(name) != before.get(name):
                other += 1
                if len(problems) < 10:
                    problems.append(f"{ref}: {name} changed")
    return good, other, problems


def _measure(
    key: str,
    method: str,
    workers: int,
    label: str,
    sandbox: SandboxProcess,
    tmp: Path,
    spec: dict[str, Any],
    seeded: dict[str, dict[str, Any]],
    wanted: dict[str, tuple[str, str]],
    settle_s: float,
) -> tuple[RunResult, list[str]]:
    _settle(settle_s)
    before = sandbox.control("GET", "/stats")
    sandbox_cpu = sandbox.cpu_seconds()
    child = _run_measured(HERE, key, {**spec, "method": method, "workers": workers}, tmp, what=f"{label} ({key})")
    sandbox_cpu = sandbox.cpu_seconds() - sandbox_cpu
    after = sandbox.control("GET", "/stats")
    routes = _requests_delta(before["requests"], after["requests"])
    now, _ = _records(sandbox)
    good, other, problems = _check(now, seeded, wanted)
    rows = len(wanted)
    dry = method == "ours_dry"
    if dry:  # a dry run must leave every asset as seeded: "wrong" counts the assets it changed
        problems = []
    requests = sum(routes.values())
    baseline = child.get("baseline_hwm_kb")
    result = RunResult(
        key=key,
        method=method,
        label=label,
        workers=workers,
        rows=int(child["rows"]),
        seconds=child["seconds"],
        rows_per_s=rows / child["seconds"],
        requests=requests,
        requests_per_row=requests / rows,
        logins=sum(after["logins"].values()) - sum(before["logins"].values()),
        requests_by_route=routes,
        cpu_s=float(child["cpu_s"]),
        sandbox_cpu_s=sandbox_cpu,
        rss_peak_mb=child["peak_kb"] / 1024 if child.get("peak_kb") is not None else None,
        rss_peak_increase_mb=(child["hwm_kb"] - baseline) / 1024 if baseline is not None else None,
        rss_after_imports_mb=baseline / 1024 if baseline is not None else None,
        outcomes=dict(child.get("outcomes", {})),
        wanted=good,
        mismatches=good if dry else rows - good,
        other_changes=other,
        hwm_reset=child.get("hwm_reset"),
        child=child,
    )
    print(
        f"  {key:<13} {result.seconds:7.2f} s, {result.rows_per_s:7.0f} rows/s, {result.requests_per_row:.2f} "
        f"requests/row, {result.mismatches} mismatches",
        file=sys.stderr,
        flush=True,
    )
    for problem in problems:
        print(f"    mismatch: {problem}", file=sys.stderr, flush=True)
    return result, problems


def _expected_outcomes(key: str, rows: int) -> dict[str, int]:
    if key == "ours_dry":
        return {"would change": rows}
    if key == "ours_rerun":
        return {"unchanged": rows}
    if key.startswith("ours"):
        return {"changed": rows}
    return {"saved": rows}


def _machine(busy_at_start: float, load_before: tuple[float, float, float]) -> dict[str, Any]:
    import requests

    return _machine_info(
        busy_at_start,
        requests=requests.__version__,
        load_before=list(load_before),
        load_after=list(os.getloadavg()),
    )


def _goal(met: bool) -> str:
    return "met" if met else "NOT met"


def _report(runs: list[RunResult], machine: dict[str, Any], rows: int, folders: int, latency_ms: float) -> str:
    latency = f"; the sandbox adds {latency_ms:g} ms to every entity GET and PUT" if latency_ms else ""
    load = "/".join(f"{v:.2f}" for v in machine["load_before"]), "/".join(f"{v:.2f}" for v in machine["load_after"])
    lines = [
        f"Bulk metadata update: a CSV sheet (reference,title,description) giving each of {rows:,} seeded assets a new "
        f"title and description ({folders:,} folders untouched{latency})",
        f"Machine: {machine['cpus']} CPUs, {machine['memory_gb']} GB RAM, Python {machine['python']}, Airflow "
        f"{machine['airflow']}, pyPreservica {machine['pypreservica']}, requests {machine['requests']}, "
        f"{machine['platform']}, {machine['date']}",
        f"Load: CPUs busy just before the run {machine['busy_at_start']:.0%}; load average (1/5/15 min) {load[0]} "
        f"before, {load[1]} after",
        "",
    ]
    header = (
        f"{'method':<30} {'workers':>7} {'rows':>6} {'seconds':>7} {'rows/s':>6} {'req/row':>7} {'logins':>6} "
        f"{'CPU s':>6} {'sbx CPU s':>9} {'busy':>4} {'peak MB':>7} {'RSS +MB':>7} {'wrong':>5}  outcomes"
    )
    lines += [header, "-" * len(header)]
    for r in runs:
        busy = _busy(r.cpu_s, r.sandbox_cpu_s, r.seconds, machine["cpus"])
        outcomes = ", ".join(f"{k} {v}" for k, v in r.outcomes.items())
        lines.append(
            f"{r.label:<30} {r.workers:>7} {r.rows:>6} {r.seconds:>7.2f} {r.rows_per_s:>6.0f} "
            f"{r.requests_per_row:>7.2f} {r.logins:>6} {r.cpu_s:>6.2f} {r.sandbox_cpu_s:>9.2f} {busy:>4.0%} "
            f"{_mb(r.rss_peak_mb, 7)} {_mb(r.rss_peak_increase_mb, 7)} {r.mismatches + r.other_changes:>5}  {outcomes}"
        )
    by = {r.key: r for r in runs}
    ours, py, raw = by["ours"], by["pypreservica"], by["raw"]
    speed = ours.rows_per_s / py.rows_per_s
    lines += [
        "",
        "Ratios of rows/s (above 1 = the first faster):",
        f"  ours, 8 workers (default) / pyPreservica loop   {speed:.3g}  (goal >= {SPEED_GOAL:g}: "
        f"{_goal(speed >= SPEED_GOAL)})",
        f"  ours, 8 workers / raw requests loop             {_ratio(ours.rows_per_s, raw.rows_per_s)}",
    ]
    if "ours_w16" in by:
        lines.append(
            f"  ours, 16 workers / pyPreservica loop            {_ratio(by['ours_w16'].rows_per_s, py.rows_per_s)}"
        )
    if "ours_w1" in by:
        w1 = by["ours_w1"]
        lines += [
            f"  ours, 1 worker / pyPreservica loop              {_ratio(w1.rows_per_s, py.rows_per_s)}  (no threads: "
            "our cost per row against pyPreservica's)",
            f"  ours, 8 workers / ours, 1 worker                {_ratio(ours.rows_per_s, w1.rows_per_s)}  (what the "
            "threads buy here)",
        ]
    if "ours_rerun" in by:
        rerun = by["ours_rerun"]
        lines.append(
            f"  ours re-run / ours first run                    {_ratio(rerun.rows_per_s, ours.rows_per_s)}  "
            f"({rerun.rows_per_s:,.0f} rows/s, {_puts(rerun)} writes)"
        )
    grown = [r for r in runs if r.rss_peak_increase_mb is not None and r.key in MEMORY_KEYS]
    if grown:
        lines += [
            "",
            f"Peak RSS growth for {rows:,} rows (VmHWM after the run minus after the imports), MB: "
            + ", ".join(f"{r.key} {r.rss_peak_increase_mb:.1f}" for r in grown),
        ]
    timed = [r for r in runs if r.cpu_s and r.rows]
    lines += [
        "",
        "CPU per row, ms (client / sandbox): "
        + ", ".join(f"{r.key} {r.cpu_s / r.rows * 1000:.2f} / {r.sandbox_cpu_s / r.rows * 1000:.2f}" for r in timed),
        "Client-CPU bound, rows/s (rows / client CPU s; a client cannot go faster, whatever its threads, as Python "
        "runs one thread at a time):",
        "  " + ", ".join(f"{r.key} {r.rows / r.cpu_s:,.0f}" for r in timed),
        "",
        "seconds = the method's call in its fresh subprocess (imports excluded; login, reading the sheet and every "
        "request included). req/row =",
        "the sandbox's request count for the run / rows (login, and the version and user details reads, included); "
        "logins = the sandbox's count.",
        "CPU s = the client process's CPU time (all threads); sbx CPU s = the sandbox process's over the same run; "
        "busy = (CPU s + sbx CPU s) /",
        f"({machine['cpus']} CPUs x seconds). peak MB = the client's whole peak RSS; RSS +MB = VmHWM after the run "
        "minus VmHWM just after the imports",
        "(reset there with /proc/self/clear_refs"
        + ("" if all(r.hwm_reset is not False for r in runs) else "; a reset was REFUSED")
        + "). wrong = assets without the sheet's title and description afterwards, plus any",
        "other property changed (read back from the sandbox's repository.jsonl). Every method but the re-run starts "
        "from a freshly re-seeded",
        f"repository (random_seed {RANDOM_SEED}, identical each time); the re-run starts from ours' result.",
        "The sandbox (uvicorn + FastAPI, one Python process) serves every request on the same "
        f"{machine['cpus']} CPUs. Without latency (the default), each row",
        "costs the client CPU time in requests/urllib3/http.client and the sandbox its own: threads can only overlap "
        "the two, so they gain at",
        "most up to the client-CPU bound above. Against a remote Preservica each request also waits on the network "
        "and the server, which threads",
        "do overlap: --latency-ms shows it. Methods run in table order, once each: repeated runs on a 2-CPU machine "
        "vary by 10-20 % (more",
        "when anything else runs), so smaller differences are noise.",
        "",
        "Requests by route:",
    ]
    lines += [f"  {r.key:<13} " + ", ".join(f"{k} {v}" for k, v in r.requests_by_route.items()) for r in runs]
    return "\n".join(lines)


def _puts(run: RunResult) -> int:
    return sum(n for route, n in run.requests_by_route.items() if route.startswith("PUT "))


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.child:
        return _measured_child(args.child, METHODS, IMPORTS)

    total_started = time.perf_counter()
    load_before = os.getloadavg()
    busy_at_start = _cpu_busy()  # anything else running skews the numbers: say so
    tmp = Path(tempfile.mkdtemp(prefix="preservica-bench-metadata-"))
    _prepare_environment(tmp)
    sandbox = harness.sandbox_process(tmp, USER)
    runs: list[RunResult] = []
    checks: list[str] = []
    failures: list[str] = []
    seed_seconds: list[float] = []
    try:
        sandbox.start()
        env = _point_at(sandbox.base_url, USER)
        if args.latency_ms:
            for route in ENTITY_ROUTES:
                fault = {"kind": "latency", "route": route, "seconds": args.latency_ms / 1000, "count": None}
                sandbox.control("POST", "/faults", fault)
        seeded, seed_digest, seconds = _seed(sandbox, args.rows)
        seed_seconds.append(seconds)
        folders = sum(1 for r in seeded.values() if r["type"] == "SO")
        sheet = tmp / "sheet.csv"
        wanted = _write_sheet(sheet, seeded)
        if len(wanted) != args.rows:
            raise RuntimeError(f"the seeded repository holds {len(wanted)} assets, not {args.rows}")
        spec = {"sheet": str(sheet), "env": env}
        fresh = True  # the repository is as seeded
        configs = [c for c in CONFIGS if not args.memory or c[0] in MEMORY_KEYS]
        for key, method, workers, reseed, label in configs:
            if reseed and not fresh:
                _, digest, seconds = _seed(sandbox, args.rows)
                seed_seconds.append(seconds)
                if digest != seed_digest:
                    raise RuntimeError(f"re-seeding before {key} gave another repository than the first seed")
            result, problems = _measure(
                key, method, workers, label, sandbox, tmp, spec, seeded, wanted, args.settle_seconds
            )
            runs.append(result)
            fresh = fresh and method == "ours_dry"  # a dry run leaves the repository as seeded
            expected = _expected_outcomes(key, args.rows)
            if result.outcomes != expected or result.rows != args.rows:
                failures.append(f"{key}: outcomes {result.outcomes} ({result.rows} rows), expected {expected}")
                failures += [f"{key}: {line}" for line in result.child.get("failed", [])[:5]]
            if method == "ours_dry":
                if result.wanted or result.other_changes or _puts(result):
                    failures.append(f"{key}: the dry run changed {result.wanted + result.other_changes} properties")
            elif result.mismatches or result.other_changes:
                failures.append(
                    f"{key}: {result.mismatches} assets without the wanted title and description, "
                    f"{result.other_changes} other properties changed; first: {problems[:3]}"
                )
            if key == "ours_rerun" and _puts(result):
                failures.append(f"{key}: {_puts(result)} writes on a repository already as wanted")
        checks += [
            f"each of the {len(seed_seconds)} seeds gave the same repository ({args.rows:,} assets, {folders:,} "
            f"folders; repository.jsonl SHA-256 {seed_digest[:16]}...)",
            "after every method all assets hold the sheet's title and description and nothing else changed "
            "(repository.jsonl read back)"
            if not failures
            else "FAILED, see below",
            f"ours: {args.rows:,} rows changed on a fresh repository"
            + (
                f", all unchanged on the re-run with {_puts(next(r for r in runs if r.key == 'ours_rerun'))} writes"
                if any(r.key == "ours_rerun" for r in runs)
                else ""
            ),
            "ours dry run: every row would change, nothing written",
        ]
    finally:
        sandbox.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    machine = _machine(busy_at_start, load_before)
    print(_report(runs, machine, args.rows, folders, args.latency_ms))
    note = f"{len(seed_seconds)} seeds: {sum(seed_seconds):.1f} s"
    total_s = harness.conclude(args, total_started, checks=checks, note=note, kept=tmp)
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    harness.write_json(
        args.json,
        {
            "benchmark": "metadata",
            "rows": args.rows,
            "folders": folders,
            "random_seed": RANDOM_SEED,
            "latency_ms": args.latency_ms,
            "settle_seconds": args.settle_seconds,
            "machine": machine,
            "total_s": total_s,
            "seed_s": seed_seconds,
            "checks": checks,
            "failures": failures,
            "results": [asdict(r) for r in runs],
        },
    )
    return 1 if failures else 0


if __name__ == "__main__":
    harness.run(main)
