"""A delivery of many small files: API requests per file, wall time per phase and peak RSS (issue 20).

One run generates ``--files`` files of mixed sizes (1-64 KiB, one in 500 of 1 MiB) in a temporary directory and
measures against one local Preservica sandbox, started as a separate process (``python -m preservica_sandbox``,
``ingest_seconds`` 0.2), at each ``--latency-ms`` (a sandbox ``latency`` fault on every ``/api/*`` request, as a
tenant across a network). Each method runs in a fresh subprocess, into its own new folder:

- ours-stored, ours-ingest: ``PreservicaIngestOperator.execute`` (not deferrable) with ``verify="stored"`` (the
  default: each created asset's stored fixity read back, two GETs an asset) or ``verify="ingest"`` (Preservica's
  own check at ingest, then a search page per 100 files for the ``SourceFixity`` identifiers); ``ours`` is
  ``ours-stored``. Phases, timed by wrapping the functions the operator and runner call: scan, skip check,
  hash (the files and the zip), build (the rest of the package), upload, processing (waiting for the progress
  tokens), outcome (Process Monitor pages, and a search for what it does not name), verify, file away (the
  report, its asset event and XCom, releasing the claim and the in-flight record); "other" is the rest of the
  wall time (the login, the target check, the claim, removing the package);
- floor: the same package (built beforehand, untimed) uploaded by ``PackageUploader`` and waited for: upload and
  Preservica's processing alone, no skip check, no report, no verification;
- pyPreservica: ``UploadAPI.upload_zip_package`` of that package, ``EntityAPI.get_async_progress`` until it
  ends, then a loop of ``EntityAPI.identifier("SourceID", ...)`` for the report (what a user writes).

Requests are the sandbox's own counters; RSS +MB = VmHWM after the run minus VmHWM after the imports.

    .venv/bin/python -m benchmarks.ingest_scale [--files 10000] [--latency-ms 0,20,50] [--json results.json]
        [--methods ours-stored,ours-ingest,floor,pypreservica]
        [--max-package-assets 1000] [--max-package-bytes N] [--package-concurrency 2]   (split delivery)
        [--keep]

Every run checks that what ours (and pyPreservica's identifier() loop) reports created is every file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Literal

from benchmarks import harness
from benchmarks.common import (
    CONN_ID,
    SandboxProcess,
    _measured_child,
    _point_at,
    _prepare_environment,
    _requests_delta,
    _run_measured,
)

USER = {"name": "bench", "password": "bench-pw-123", "tenant": "BENCH"}
INGEST_SECONDS = 0.2
NAME = "accession-bench"
PHASES = ("scan", "skip check", "hash", "build", "upload", "processing", "outcome", "verify", "file away")
FLOOR_PHASES = ("upload", "processing")  # what no client can do without: the goal is the rest under 10 %
TABLE_HEADER = (
    "method",
    "latency",
    "files",
    "wall s",
    "vs floor",
    "vs pyPreservica",
    "outside upload + processing",
    "API requests a file",
    "peak RSS MB (+MB)",
    "phases (s)",
)


def _timed(phases: dict[str, float], name: str, fn: Any) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            phases[name] = phases.get(name, 0.0) + time.perf_counter() - started

    return wrapper


# --------------------------------------------------------------------------- methods (child side)
def _ours(spec: dict[str, Any], verify: Literal["stored", "ingest"]) -> dict[str, Any]:
    from airflow_provider_preservica.hooks import preservica as hook_module
    from airflow_provider_preservica.ingest import runner
    from airflow_provider_preservica.ingest.packaging import builder
    from airflow_provider_preservica.operators.ingest import PreservicaIngestOperator

    phases: dict[str, float] = {}
    runner.scan_source = _timed(phases, "scan", runner.scan_source)
    runner.find_present = _timed(phases, "skip check", runner.find_present)
    builder.hash_files = _timed(phases, "hash", builder.hash_files)
    builder.hash_file = _timed(phases, "hash", builder.hash_file)
    runner.build_opex_package = _timed(phases, "build", runner.build_opex_package)  # "hash" taken out below
    # Uploads of several packages overlap (``package_concurrency``): "upload" sums them. "processing" is every
    # wait for progress tokens, also a split delivery's wait for the package that creates the folders.
    runner.IngestRunner.upload = _timed(phases, "upload", runner.IngestRunner.upload)
    hook_module.wait_for_all = _timed(phases, "processing", hook_module.wait_for_all)  # what the hook calls
    hook_module.ingest_messages = _timed(phases, "outcome", hook_module.ingest_messages)
    runner.IngestRunner._created_below_target = _timed(phases, "outcome", runner.IngestRunner._created_below_target)
    runner.IngestRunner._verify_fixity = _timed(phases, "verify", runner.IngestRunner._verify_fixity)
    runner.IngestRunner.record_outcomes = _timed(phases, "record", runner.IngestRunner.record_outcomes)
    PreservicaIngestOperator._finish = _timed(phases, "finish", PreservicaIngestOperator._finish)

    class TaskInstance:
        dag_id, task_id, run_id, map_index = "bench", "ingest", "bench", -1

        def xcom_push(self, key: str, value: object) -> None:
            pass

    operator = PreservicaIngestOperator(
        task_id="ingest",
        source=spec["source"],
        parent_ref=spec["parent_ref"],
        security_tag="open",
        poll_interval=0.2,
        deferrable=False,
        batch_id=f"bench-{spec['parent_ref']}",
        work_dir=spec["work"],
        verify=verify,
        **spec.get("limits", {}),
    )
    report = operator.execute({"ti": TaskInstance()})
    phases["build"] -= phases.get("hash", 0.0)
    phases["file away"] = phases.pop("finish") - phases.pop("record")
    phases = {name: phases[name] for name in PHASES if name in phases}
    return {
        "packages": report["package_count"],
        "phases": phases,
        "created": report["created_count"],
        "verified": report["verified"],
        "xcom_bytes": len(json.dumps(report, default=str)),
    }


def _floor(spec: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_preservica.client.progress import wait_for_progress
    from airflow_provider_preservica.client.upload import PackageUploader
    from airflow_provider_preservica.hooks.preservica import PreservicaHook

    phases: dict[str, float] = {}
    hook = PreservicaHook(CONN_ID)
    settings = hook.settings
    uploader = PackageUploader(settings.base_url, settings.tenant, hook.token_cache, verify=settings.verify)
    started = time.perf_counter()
    result = uploader.upload(spec["zip"], spec["parent_ref"])
    phases["upload"] = time.perf_counter() - started
    started = time.perf_counter()
    wait_for_progress(hook.get_conn(), result.progress_token, poll_interval=0.2, timeout=3600)
    phases["processing"] = time.perf_counter() - started
    return {"phases": phases}


def _pypreservica(spec: dict[str, Any]) -> dict[str, Any]:
    from pyPreservica import EntityAPI, UploadAPI

    env = spec["env"]
    account = {"username": env["user"], "password": env["password"], "tenant": env["tenant"], "server": env["server"]}
    phases: dict[str, float] = {}
    started = time.perf_counter()
    upload = UploadAPI(**account, protocol="http")
    token = upload.upload_zip_package(spec["zip"], folder=spec["parent_ref"])
    phases["upload"] = time.perf_counter() - started
    started = time.perf_counter()
    entity = EntityAPI(**account, protocol="http")
    while entity.get_async_progress(token) in ("ACTIVE", "PENDING"):
        time.sleep(0.2)
    phases["processing"] = time.perf_counter() - started
    started = time.perf_counter()
    found = sum(1 for source_id in spec["source_ids"] if entity.identifier("SourceID", source_id))
    phases["identifier() loop"] = time.perf_counter() - started
    return {"phases": phases, "created": found}


def _ours_stored(spec: dict[str, Any]) -> dict[str, Any]:
    return _ours(spec, "stored")


def _ours_ingest(spec: dict[str, Any]) -> dict[str, Any]:
    return _ours(spec, "ingest")


METHODS = {
    "ours": _ours_stored,
    "ours-stored": _ours_stored,
    "ours-ingest": _ours_ingest,
    "floor": _floor,
    "pypreservica": _pypreservica,
}
OURS_IMPORTS = ["airflow_provider_preservica.operators.ingest", "boto3", "boto3.s3.transfer"]
IMPORTS = {
    "ours": OURS_IMPORTS,
    "ours-stored": OURS_IMPORTS,
    "ours-ingest": OURS_IMPORTS,
    "floor": ["airflow_provider_preservica.client.upload", "airflow_provider_preservica.hooks.preservica", "boto3"],
    "pypreservica": ["pyPreservica", "boto3", "boto3.s3.transfer"],
}


# --------------------------------------------------------------------------- parent side
def _make_files(source: Path, files: int) -> int:
    total = 0
    for index in range(files):
        folder = source / f"box-{index // 500:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        size = 1024 * 1024 if index % 500 == 499 else 1024 * (1 + (index * 7919) % 64)
        data = (index.to_bytes(8, "big") * (size // 8 + 1))[:size]
        (folder / f"item-{index:06d}.bin").write_bytes(data)
        total += size
    return total


def _outside_floor(row: dict[str, Any]) -> float:
    """The share of the wall time spent on anything but upload and Preservica's processing."""
    inside = sum(row["phases"].get(name, 0.0) for name in FLOOR_PHASES)
    return max(0.0, row["seconds"] - inside) / row["seconds"] if row["seconds"] else 0.0


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown: one row per method and latency, with the share outside the floor and the ratios to the
    floor and to the pyPreservica way measured at the same latency in the same run."""
    by = {(r["method"], r["latency_ms"]): r for r in rows}
    lines = []
    for row in rows:
        floor, peer = by.get(("floor", row["latency_ms"])), by.get(("pypreservica", row["latency_ms"]))
        ratio = [f"{row['seconds'] / other['seconds']:.2f}x" if other else "-" for other in (floor, peer)]
        other = row["seconds"] - sum(row["phases"].values())
        phases = ", ".join(f"{k} {v:.1f}" for k, v in row["phases"].items()) + f", other {max(other, 0.0):.1f}"
        lines.append(
            (
                row["method"],
                f"{row['latency_ms']} ms",
                f"{row['files']:,}",
                f"{row['seconds']:.1f}",
                ratio[0],
                ratio[1],
                f"{100 * _outside_floor(row):.0f} %",
                f"{row['per_file']:.2f}",
                f"{row['peak_mb']:.0f} (+{row['rss_increase_mb']:.0f})",
                phases,
            )
        )
    return harness.markdown_table(TABLE_HEADER, "lrrrrrrrrl", lines)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = harness.parser(__doc__, keep="the temporary directory (files, package, sandbox data, logs)", child=True)
    parser.add_argument("--files", type=int, default=10_000, help="files in the delivery (default 10000)")
    parser.add_argument(
        "--latency-ms",
        default="0,20,50",
        metavar="MS[,MS...]",
        help="sandbox latency on every /api/* request; every method runs at each (default 0,20,50)",
    )
    parser.add_argument(
        "--methods",
        default="ours-stored,ours-ingest,floor,pypreservica",
        metavar="NAME[,NAME...]",
        help=f"methods to run, of {', '.join(METHODS)} (default ours-stored,ours-ingest,floor,pypreservica)",
    )
    parser.add_argument("--max-package-assets", type=int, help="split the delivery (ours): files per package")
    parser.add_argument("--max-package-bytes", type=int, help="split the delivery (ours): bytes per package")
    parser.add_argument("--package-concurrency", type=int, help="packages uploaded at once (ours)")
    args = parser.parse_args(argv)
    if args.child:
        return args
    if args.files < 1:
        parser.error("--files must be at least 1")
    try:
        args.latencies = [int(v) for v in args.latency_ms.split(",")]
    except ValueError:
        parser.error(f"--latency-ms: whole milliseconds separated by commas, not {args.latency_ms!r}")
    if any(v < 0 for v in args.latencies):
        parser.error("--latency-ms must not be negative")
    args.method_names = args.methods.split(",")
    unknown = [m for m in args.method_names if m not in METHODS]
    if unknown:
        parser.error(f"--methods: unknown {', '.join(unknown)} (known: {', '.join(METHODS)})")
    args.limits = {
        name: value
        for name, value in (
            ("max_package_assets", args.max_package_assets),
            ("max_package_bytes", args.max_package_bytes),
            ("package_concurrency", args.package_concurrency),
        )
        if value
    }
    return args


def _check(row: dict[str, Any]) -> None:
    """What a method reports it created (and verified) is every file of the delivery."""
    files = row["files"]
    for key in ("created", "verified"):
        if key in row and row[key] != files:
            raise RuntimeError(f"{row['method']} at {row['latency_ms']} ms: {key} {row[key]}, not {files}")


def _payload(args: argparse.Namespace, rows: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "benchmark": "ingest_scale",
        "files": args.files,
        "latency_ms": args.latencies,
        "methods": args.method_names,
        "limits": args.limits,
        "ingest_seconds": INGEST_SECONDS,
        **extra,
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.child:
        return _measured_child(args.child, METHODS, IMPORTS)

    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    # The files, the package and the sandbox's copy (GBs at 100,000 files) go at the end unless --keep.
    with harness.workdir("preservica-bench-scale-", keep=args.keep) as tmp:
        _prepare_environment(tmp)
        with harness.sandbox(tmp, USER, {"ingest_seconds": INGEST_SECONDS}) as sandbox:
            _measure(args, tmp, sandbox, rows)
    print(table(rows))
    checks = [
        f"every run of ours created {args.files:,} assets and verified them all"
        if any(m.startswith("ours") for m in args.method_names)
        else "",
        f"pyPreservica's identifier() loop found all {args.files:,}" if "pypreservica" in args.method_names else "",
    ]
    checks = [c for c in checks if c]
    total_s = harness.conclude(args, started, checks=checks or None, kept=tmp)
    harness.write_json(args.json, _payload(args, rows, total_s=total_s, checks=checks))
    return 0


def _measure(args: argparse.Namespace, tmp: Path, sandbox: SandboxProcess, rows: list[dict[str, Any]]) -> None:
    """Every method at every latency, each in a fresh subprocess into a new folder: a row each into ``rows``."""
    env = _point_at(sandbox.base_url, USER)
    source = tmp / NAME
    total = _make_files(source, args.files)
    print(f"  generated {args.files} files, {total / 2**20:.1f} MiB", file=sys.stderr, flush=True)

    from airflow_provider_preservica.hooks.preservica import PreservicaHook
    from airflow_provider_preservica.ingest.packaging import build_opex_package, uuid_source_ids

    hook = PreservicaHook(CONN_ID)
    manifest = build_opex_package(
        source, tmp / "package", security_tag="open", package_name=NAME, source_id_namespace=NAME, keep_staged=False
    )
    ids = uuid_source_ids(NAME)
    source_ids = [ids(p.relative_to(source).as_posix(), False) for p in sorted(source.rglob("*.bin"))]
    for latency in args.latencies:
        sandbox.control("DELETE", "/faults")
        if latency:
            for route in ("GET /api/*", "POST /api/*", "PUT /api/*"):
                sandbox.control(
                    "POST", "/faults", {"kind": "latency", "route": route, "seconds": latency / 1000, "count": None}
                )
        for method in args.method_names:
            folder = hook.entities.create_folder(f"scale {method} {latency} ms", None, "open")
            work = tmp / f"work-{method}-{latency}"
            work.mkdir()
            spec = {
                "source": str(source),
                "zip": manifest.package_path,
                "parent_ref": folder.ref,
                "work": str(work),
                "env": env,
                "source_ids": source_ids,
                "method": method,
                "limits": args.limits,
            }
            before = sandbox.control("GET", "/stats")["requests"]
            child = _run_measured(Path(__file__).resolve(), f"{method}-{latency}", spec, tmp, method)
            routes = _requests_delta(before, sandbox.control("GET", "/stats")["requests"])
            api = sum(n for route, n in routes.items() if " /api/" in route)
            row: dict[str, Any] = {
                "method": method,
                "latency_ms": latency,
                "files": args.files,
                "seconds": child["seconds"],
                "requests": api,
                "per_file": api / args.files,
                "phases": child["phases"],
                "rss_increase_mb": (child["hwm_kb"] - child["baseline_hwm_kb"]) / 1024,
                "peak_mb": child["peak_kb"] / 1024,
                "routes": routes,
                **{k: child[k] for k in ("created", "verified", "xcom_bytes", "packages") if k in child},
            }
            rows.append(row)
            # After every row: a long run stopped half way keeps what it measured.
            harness.write_json(args.json, _payload(args, rows), say=False)
            print(
                f"  {method:<13} {latency:>3} ms: {child['seconds']:7.1f} s, {api} requests "
                f"({api / args.files:.2f}/file), +{row['rss_increase_mb']:.0f} MB, "
                f"{row.get('packages', 1)} package(s), XCom {row.get('xcom_bytes', '-')} B, phases "
                + ", ".join(f"{k} {v:.1f}" for k, v in child["phases"].items()),
                file=sys.stderr,
                flush=True,
            )
            _check(row)


if __name__ == "__main__":
    harness.run(main)
