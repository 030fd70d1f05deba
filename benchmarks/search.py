"""A CSV report of every asset of a large repository: ours vs pyPreservica vs a raw requests loop.

One run writes the same report (every asset, ``xip.document_type`` ``IO``, with ``xip.title``,
``xip.security_descriptor`` and ``xip.parent_ref``) three ways against one local Preservica sandbox
seeded with ``--assets`` assets (default 100,000; generator seed 42):

- ours: ``PreservicaHook().search(SearchQuery(...), page_size=P)`` streamed through ``write_report`` into
  ``atomic_output`` (what ``PreservicaSearchOperator`` does), P = 500 (our default) and 1000;
- pyPreservica: ``ContentAPI(...).search_index_filter_csv(...)`` at its default page size (50) and at
  ours (500, 1000); its constructor logs in and reads the server version and user details;
- raw requests: a hand-written loop (one ``requests.Session``, login, then ``POST /api/content/search``
  with ``start``/``max``), each page written straight to the ``csv`` module, P = 500 and 1000.

Every configuration runs twice, each time in a fresh subprocess: once for time and peak RSS (VmHWM of
``/proc/self/status`` after the run, minus VmHWM just after the imports; the high-water mark is reset
with ``/proc/self/clear_refs`` after the imports), once under ``tracemalloc`` for the peak Python heap
(tracemalloc slows Python down and adds its own memory, so neither run distorts the other's numbers).
Login is part of the measured time. Requests are the sandbox's own counters. Before any measurement the
parent sends each method's query once, so that no method pays for the sandbox's first scan of the
repository (it caches every query's hits). The sandbox runs in the parent process and competes with the
measured subprocess for the machine's CPUs.

    .venv/bin/python -m benchmarks.search [--assets 100000] [--json results.json]
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import harness
from benchmarks.common import _machine_info, _prepare_environment, _requests_delta, _reset_hwm, _status_kb
from benchmarks.harness import ratio as _ratio

HERE = Path(__file__).resolve()
CONN_ID = "preservica_default"
USER = {"name": "bench-robot", "password": "B3nch-R0bot-pw-2026", "tenant": "BENCH"}
SEARCH_ROUTE = "POST /api/content/search"
FIELDS = ["xip.title", "xip.security_descriptor", "xip.parent_ref"]
FILTERS = {"xip.document_type": "IO"}
PYPRESERVICA_DEFAULT_PAGE_SIZE = 50  # search_index_filter_csv(page_size=50) in pyPreservica 4.2.2
RAW_COLUMNS = ["reference", "title", "security_tag", "parent"]  # a script's own header names
# Header name -> canonical column, for comparing the reports whatever each method calls its columns.
CANONICAL = {
    "xip.reference": "reference",
    "reference": "reference",
    "xip.title": "title",
    "title": "title",
    "xip.security_descriptor": "security",
    "security_tag": "security",
    "xip.parent_ref": "parent",
    "parent": "parent",
}
COMPARED = ("reference", "title", "security", "parent")

# (key, method, page size, label)
CONFIGS: list[tuple[str, str, int, str]] = [
    ("ours_500", "ours", 500, "ours (default page)"),
    ("ours_1000", "ours", 1000, "ours"),
    ("pypreservica_50", "pypreservica", PYPRESERVICA_DEFAULT_PAGE_SIZE, "pyPreservica (default page)"),
    ("pypreservica_500", "pypreservica", 500, "pyPreservica"),
    ("pypreservica_1000", "pypreservica", 1000, "pyPreservica"),
    ("raw_500", "raw", 500, "raw requests"),
    ("raw_1000", "raw", 1000, "raw requests"),
]


@dataclass
class ConfigResult:
    key: str
    method: str
    label: str
    page_size: int
    rows: int
    seconds: float
    rows_per_s: float
    rss_after_imports_mb: float
    rss_peak_increase_mb: float
    tracemalloc_peak_mb: float
    traced_run_seconds: float
    requests: int
    requests_by_route: dict[str, int]
    csv_bytes: int
    hwm_reset: bool
    child: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- the three methods (child side)
def _ours(env: dict[str, str], out: str, page_size: int) -> dict[str, Any]:
    from airflow_provider_preservica.client.search import SearchQuery
    from airflow_provider_preservica.files.storage import atomic_output, check_writable
    from airflow_provider_preservica.hooks.preservica import PreservicaHook
    from airflow_provider_preservica.search.report import write_report

    query = SearchQuery(filters=dict(FILTERS), fields=list(FIELDS))
    check_writable(out)
    pager = PreservicaHook(CONN_ID).search(query, page_size=page_size)
    with atomic_output(out, "w", encoding="utf-8", newline="") as handle:
        summary = write_report(pager, query.requested_fields, handle, "csv", 20)
    return {"rows": summary.rows, "total_hits": pager.total, "pages": pager.pages}


def _pypreservica(env: dict[str, str], out: str, page_size: int) -> dict[str, Any]:
    from pyPreservica import ContentAPI

    client = ContentAPI(
        username=env["user"], password=env["password"], tenant=env["tenant"], server=env["server"], protocol="http"
    )
    filter_values = {**FILTERS, **dict.fromkeys(FIELDS, "")}
    client.search_index_filter_csv(query="%", csv_file=out, page_size=page_size, filter_values=filter_values)
    return {}


def _raw_query() -> str:
    return json.dumps({"q": "%", "fields": [{"name": k, "values": [v]} for k, v in FILTERS.items()]})


def _raw_page(session: Any, url: str, token: str, start: int, size: int) -> dict[str, Any]:
    form = {"q": _raw_query(), "start": str(start), "max": str(size), "metadata": ",".join(FIELDS)}
    response = session.post(f"{url}/api/content/search", data=form, headers={"Preservica-Access-Token": token})
    response.raise_for_status()
    return dict(response.json()["value"])


def _raw_login(session: Any, env: dict[str, str]) -> str:
    form = {"username": env["user"], "password": env["password"], "tenant": env["tenant"]}
    response = session.post(f"{env['url']}/api/accesstoken/login", data=form)
    response.raise_for_status()
    return str(response.json()["token"])


def _raw(env: dict[str, str], out: str, page_size: int) -> dict[str, Any]:
    import requests

    rows = pages = 0
    with requests.Session() as session, open(out, "w", newline="", encoding="utf-8") as handle:
        token = _raw_login(session, env)
        writer = csv.writer(handle)
        writer.writerow(RAW_COLUMNS)
        start, total = 0, None
        while total is None or start < total:
            value = _raw_page(session, env["url"], token, start, page_size)
            pages += 1
            total = int(value["totalHits"])
            ids = value["objectIds"]
            if not ids:
                break
            for object_id, row in zip(ids, value["metadata"], strict=True):
                fields = {item["name"]: item["value"] for item in row}
                writer.writerow([object_id.split("|", 1)[1], *(fields.get(name, "") for name in FIELDS)])
            rows += len(ids)
            start += len(ids)
    return {"rows": rows, "total_hits": total, "pages": pages}


METHODS = {"ours": _ours, "pypreservica": _pypreservica, "raw": _raw}
IMPORTS = {
    "ours": [
        "airflow_provider_preservica.hooks.preservica",
        "airflow_provider_preservica.client.search",
        "airflow_provider_preservica.search.report",
        "airflow_provider_preservica.files.storage",
    ],
    "pypreservica": ["pyPreservica"],
    "raw": ["requests"],
}


def _child(method: str, page_size: int, out: str, result_path: str, trace: bool) -> int:
    import importlib

    for module in IMPORTS[method]:
        importlib.import_module(module)
    env = _bench_env()
    gc.collect()
    hwm_reset = _reset_hwm()
    baseline_kb = _status_kb("VmHWM")
    if trace:
        import tracemalloc

        tracemalloc.start()
    started = time.perf_counter()
    info = METHODS[method](env, out, page_size)
    seconds = time.perf_counter() - started
    peak_traced = 0
    if trace:
        peak_traced = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    result = {
        "seconds": seconds,
        "baseline_hwm_kb": baseline_kb,
        "hwm_kb": _status_kb("VmHWM"),
        "hwm_reset": hwm_reset,
        "tracemalloc_peak_bytes": peak_traced,
        **info,
    }
    Path(result_path).write_text(json.dumps(result), encoding="utf-8")
    return 0


# --------------------------------------------------------------------------- parent side
def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = harness.parser(__doc__, keep="the temporary directory with the CSV reports")
    parser.add_argument("--assets", type=int, default=100_000, help="assets to seed (default 100000)")
    parser.add_argument("--child", nargs=4, metavar=("METHOD", "PAGE_SIZE", "OUT", "RESULT"), help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.assets < 1:
        parser.error("--assets must be at least 1")
    return args


def _point_at(sandbox: Any) -> None:
    """The Connection our hook reads, and the account the other two methods use (subprocesses inherit both)."""
    os.environ.update(
        {
            "PRESERVICA_BENCH_URL": sandbox.base_url,
            "PRESERVICA_BENCH_SERVER": sandbox.server,
            "PRESERVICA_BENCH_USER": USER["name"],
            "PRESERVICA_BENCH_PASSWORD": USER["password"],
            "PRESERVICA_BENCH_TENANT": USER["tenant"],
            f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(
                {
                    "conn_type": "preservica",
                    "host": sandbox.base_url,
                    "login": USER["name"],
                    "password": USER["password"],
                    "extra": {"tenant": USER["tenant"]},
                }
            ),
        }
    )


def _bench_env() -> dict[str, str]:
    return {k: os.environ[f"PRESERVICA_BENCH_{k.upper()}"] for k in ("url", "server", "user", "password", "tenant")}


def _warm_up() -> None:
    """Send each method's exact query once (first page only), so the sandbox has cached every query's hits."""
    import requests
    from pyPreservica import ContentAPI

    from airflow_provider_preservica.client.search import SearchQuery
    from airflow_provider_preservica.hooks.preservica import PreservicaHook

    env = _bench_env()
    query = SearchQuery(filters=dict(FILTERS), fields=list(FIELDS))
    list(PreservicaHook(CONN_ID).search(query, page_size=1, limit=1))
    client = ContentAPI(
        username=env["user"], password=env["password"], tenant=env["tenant"], server=env["server"], protocol="http"
    )
    client.search_index_filter_hits(query="%", filter_values={**FILTERS, **dict.fromkeys(FIELDS, "")})
    with requests.Session() as session:
        _raw_page(session, env["url"], _raw_login(session, env), 0, 1)


def _run_child(method: str, page_size: int, out: Path, tmp: Path, trace: bool) -> tuple[dict[str, Any], float]:
    result_path = tmp / f"{out.stem}.result.json"
    command = [sys.executable, "-m", "benchmarks.search", "--child", method, str(page_size), str(out), str(result_path)]
    started = time.perf_counter()
    done = subprocess.run(command + (["--trace"] if trace else []), capture_output=True, text=True, cwd=HERE.parents[1])
    wall = time.perf_counter() - started
    if done.returncode != 0 or not result_path.exists():
        sys.stderr.write(done.stdout + done.stderr)
        raise RuntimeError(f"{method} (page size {page_size}{', traced' if trace else ''}) failed: {done.returncode}")
    return json.loads(result_path.read_text(encoding="utf-8")), wall


def _read_report(path: Path) -> tuple[int, set[tuple[str, ...]]]:
    """Data rows and the set of (reference, title, security, parent) rows, whatever the header names."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        positions = {CANONICAL[name]: i for i, name in enumerate(header) if name in CANONICAL}
        missing = [name for name in COMPARED if name not in positions]
        if missing:
            raise RuntimeError(f"{path.name}: no column for {missing} in header {header}")
        order = [positions[name] for name in COMPARED]
        kind = header.index("xip.document_type") if "xip.document_type" in header else None
        rows = 0
        seen: set[tuple[str, ...]] = set()
        for row in reader:
            rows += 1
            seen.add(tuple(row[i] for i in order))
            if kind is not None and row[kind] != "IO":
                raise RuntimeError(f"{path.name}: row {rows} has xip.document_type {row[kind]!r}")
    return rows, seen


def _verify(reports: dict[str, list[Path]], expected: int) -> list[str]:
    """Every report has ``expected`` distinct rows, and all hold the same rows; raise otherwise."""
    reference: set[tuple[str, ...]] | None = None
    first = ""
    checked = 0
    for key, paths in reports.items():
        for path in paths:
            rows, seen = _read_report(path)
            if rows != expected or len(seen) != expected:
                raise RuntimeError(f"{path.name}: {rows} rows ({len(seen)} distinct), expected {expected}")
            if reference is None:
                reference, first = seen, key
            elif seen != reference:
                raise RuntimeError(
                    f"{path.name}: {len(seen - reference)} rows not in {first}'s report, "
                    f"{len(reference - seen)} of its rows missing"
                )
            checked += 1
    return [
        f"{checked} reports (timed and traced runs) checked: each {expected:,} distinct rows = the asset count = "
        "the totalHits ours and raw saw; identical sets of (reference, title, security tag, parent) rows "
        "whatever the column names and order; pyPreservica's extra xip.document_type column all IO"
    ]


def _machine() -> dict[str, Any]:
    import requests

    return _machine_info(requests=requests.__version__)


def _report(results: list[ConfigResult], machine: dict[str, Any], assets: int, folders: int) -> str:
    table = harness.Table(
        harness.Column("method", 28, "<"),
        harness.Column("page", 5),
        harness.Column("rows", 8),
        harness.Column("seconds", 8, format=".2f"),
        harness.Column("rows/s", 8, format=".0f"),
        harness.Column("requests", 8),
        harness.Column("py peak MB", 10, format=".2f"),
        harness.Column("RSS +MB", 8, format=".1f"),
        harness.Column("RSS base MB", 11, format=".1f"),
    )
    lines = [
        f"Search report: every asset (xip.document_type IO) of a seeded sandbox repository ({assets:,} assets, "
        f"{folders:,} folders) with {', '.join(FIELDS)} to CSV",
        f"Machine: {machine['cpus']} CPUs, Python {machine['python']}, Airflow {machine['airflow']}, "
        f"pyPreservica {machine['pypreservica']}, requests {machine['requests']}, {machine['platform']}, "
        f"{machine['date']}",
        "",
        *table.lines(
            [
                (
                    *(r.label, r.page_size, r.rows, r.seconds, r.rows_per_s, r.requests),
                    *(r.tracemalloc_peak_mb, r.rss_peak_increase_mb, r.rss_after_imports_mb),
                )
                for r in results
            ]
        ),
    ]
    by_key = {r.key: r for r in results}
    lines += ["", "Ratios (ours / other; below 1 = ours faster, smaller or fewer):"]
    pairs = [
        ("ours_500", "pypreservica_50", "ours 500 / pyPreservica 50 (defaults)"),
        ("ours_500", "pypreservica_500", "ours 500 / pyPreservica 500"),
        ("ours_1000", "pypreservica_1000", "ours 1000 / pyPreservica 1000"),
        ("ours_500", "raw_500", "ours 500 / raw 500"),
        ("ours_1000", "raw_1000", "ours 1000 / raw 1000"),
    ]
    for mine, other, label in pairs:
        a, b = by_key[mine], by_key[other]
        lines.append(
            f"  {label:<38} time {_ratio(a.seconds, b.seconds):>5}, py peak "
            f"{_ratio(a.tracemalloc_peak_mb, b.tracemalloc_peak_mb):>5}, RSS +"
            f"{_ratio(a.rss_peak_increase_mb, b.rss_peak_increase_mb):>5}, requests {_ratio(a.requests, b.requests):>5}"
        )
    slow, fair = by_key["pypreservica_50"], by_key["pypreservica_500"]
    lines += [
        "",
        f"pyPreservica at its default page size ({slow.page_size}) takes {slow.seconds:.2f} s and {slow.requests} "
        f"requests, {_ratio(slow.seconds, fair.seconds)}x its time at page size {fair.page_size} "
        f"({fair.seconds:.2f} s).",
        "",
        "seconds = login + every page + CSV written, in a fresh subprocess (imports excluded); rows = data rows",
        "in the CSV file. py peak MB = tracemalloc peak of a second, traced run of the same configuration "
        "(traced run times: JSON).",
        "RSS +MB = VmHWM after the run minus VmHWM just after the imports (reset there with /proc/self/clear_refs"
        + ("" if all(r.hwm_reset for r in results) else "; the reset was REFUSED, so import peaks may mask it")
        + "); RSS base MB",
        "= VmHWM just after the imports (ours imports Airflow). requests = the sandbox's counters for that run "
        "(login included;",
        "pyPreservica's constructor also reads the server version and the user details).",
        "Metadata asked for per hit: ours xip.reference + the 3 fields (SearchQuery.requested_fields puts the "
        "reference first);",
        "pyPreservica xip.reference + xip.document_type + the 3 (its filter keys are also its columns); raw the 3 "
        "fields only (it takes",
        "the reference from objectIds). Bigger pages mean bigger responses for the sandbox to build and the "
        "client to parse.",
        "One run per configuration: repeated runs on a 2-CPU machine vary by 10-20 % in seconds (single "
        "outliers more), so",
        "smaller differences in seconds between two rows are noise.",
        f"The sandbox (uvicorn + FastAPI) runs in the parent process and competes with the measured subprocess "
        f"for the {machine['cpus']} CPUs;",
        "each method's query was sent once before any measurement, so every run finds its hits cached.",
        "",
        "Requests by route (timed runs):",
    ]
    lines += [
        f"  {r.label:<28} {r.page_size:>5}  " + ", ".join(f"{k} {v}" for k, v in r.requests_by_route.items())
        for r in results
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.child:
        method, page_size, out, result_path = args.child
        return _child(method, int(page_size), out, result_path, args.trace)

    total_started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="preservica-bench-search-"))
    _prepare_environment(tmp, clear_prefixes=("PRESERVICA_BENCH_",))
    sandbox = None
    results: list[ConfigResult] = []
    try:
        from preservica_sandbox import SandboxServer, SandboxUser

        seed_started = time.perf_counter()
        user = SandboxUser(name=USER["name"], password=USER["password"], tenant=USER["tenant"])
        sandbox = SandboxServer(users=[user], seed_assets=args.assets).start()
        seed_s = time.perf_counter() - seed_started
        counts = sandbox.state.repository.counts()
        if counts["assets"] != args.assets:
            raise RuntimeError(f"the sandbox holds {counts['assets']} assets, not {args.assets}")
        _point_at(sandbox)
        _warm_up()

        runs: dict[str, dict[str, Any]] = {}
        reports: dict[str, list[Path]] = {}
        for trace in (False, True):
            for key, method, page_size, _label in CONFIGS:
                out = tmp / f"{key}{'_traced' if trace else ''}.csv"
                before = dict(sandbox.state.stats()["requests"])
                child, wall = _run_child(method, page_size, out, tmp, trace)
                child["wall_s"] = wall
                child["requests_by_route"] = _requests_delta(before, sandbox.state.stats()["requests"])
                child["csv_bytes"] = out.stat().st_size
                runs[f"{key}{'_traced' if trace else ''}"] = child
                reports.setdefault(key, []).append(out)
                print(
                    f"  {key:<18} {'traced' if trace else 'timed':<6} {child['seconds']:6.2f} s "
                    f"(subprocess {wall:.1f} s)",
                    file=sys.stderr,
                    flush=True,
                )
        checks = _verify(reports, args.assets)
        for key, method, page_size, label in CONFIGS:
            timed, traced = runs[key], runs[f"{key}_traced"]
            rows = args.assets  # verified above for every report
            for name in ("rows", "total_hits"):
                if name in timed and timed[name] != rows:
                    raise RuntimeError(f"{key}: the method reported {name} = {timed[name]}, expected {rows}")
            routes = timed["requests_by_route"]
            if routes != traced["requests_by_route"]:
                raise RuntimeError(f"{key}: timed and traced runs made different requests: {routes} / {traced}")
            results.append(
                ConfigResult(
                    key=key,
                    method=method,
                    label=label,
                    page_size=page_size,
                    rows=rows,
                    seconds=timed["seconds"],
                    rows_per_s=rows / timed["seconds"],
                    rss_after_imports_mb=timed["baseline_hwm_kb"] / 1024,
                    rss_peak_increase_mb=(timed["hwm_kb"] - timed["baseline_hwm_kb"]) / 1024,
                    tracemalloc_peak_mb=traced["tracemalloc_peak_bytes"] / 2**20,
                    traced_run_seconds=traced["seconds"],
                    requests=sum(routes.values()),
                    requests_by_route=routes,
                    csv_bytes=timed["csv_bytes"],
                    hwm_reset=bool(timed["hwm_reset"]),
                    child={"timed": timed, "traced": traced},
                )
            )
    finally:
        if sandbox is not None:
            sandbox.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    machine = _machine()
    print(_report(results, machine, args.assets, counts["folders"]))
    note = f"seeding and sandbox start {seed_s:.1f} s"
    total_s = harness.conclude(args, total_started, checks=checks, note=note, kept=tmp, kept_what="Reports")
    harness.write_json(
        args.json,
        {
            "benchmark": "search",
            "assets": args.assets,
            "folders": counts["folders"],
            "fields": FIELDS,
            "filters": FILTERS,
            "machine": machine,
            "total_s": total_s,
            "seed_s": seed_s,
            "checks": checks,
            "results": [asdict(r) for r in results],
        },
    )
    return 0


if __name__ == "__main__":
    harness.run(main)
