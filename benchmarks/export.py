"""Download of a ~2 GB export: ours (``download_to``, then ``verify_archive``) vs pyPreservica vs curl.

One run sets up, against one local Preservica sandbox started as a separate process
(``python -m preservica_sandbox``) so that the client's memory is measured alone, an asset whose
one bitstream is ``--size-mb`` MiB of random bytes (default 2048): the file is packaged with
``build_opex_package`` and ingested through the S3 endpoint with our ``PackageUploader`` (as
``PreservicaIngestOperator`` would). The asset is exported once (``start_export`` + ``wait_for_progress``,
default ``ExportOptions``: content, metadata, all generations, parent hierarchy) and the same export is then
downloaded three ways, each in a fresh subprocess:

- ours: ``download_to(hook.get_conn(), "/api/entity/actions/exports/{token}/content", dest)`` (what
  ``PreservicaExportOperator`` does: 1 MiB chunks, SHA-256 while writing, page cache dropped behind the writes,
  Range resume, fsync, rename when complete);
  then, in another fresh subprocess, ``verify_archive(dest)`` (zip CRCs, every OPEX sidecar fixity, and every
  file inside each PAX against the fixity its XIP declares);
- pyPreservica: ``EntityAPI(...).download_opex(token)``: pyPreservica 4.2.2 can download an existing progress
  token (``export_opex`` is ``download_opex`` after its own start + poll), so the same export is reused; it writes
  ``<token>.zip`` into the working directory in 4 KiB chunks; its constructor logs in and reads the server
  version and the user details;
- curl: ``curl -o dest -H "Preservica-Access-Token: ..." .../api/entity/actions/exports/{token}/content`` with
  a token from a login the parent made before.

Before each method: ``sync`` and a pause (``--settle-seconds``, default 6), so that each starts from the same
memory state: on a VM with free page reporting, memory freed just before (the previous download, deleted) is
cheap to reuse for about two seconds only (``common._settle``).

Time and memory as in ``search.py``: seconds = the method's call, imports excluded, login included; RSS +MB =
VmHWM after the run minus VmHWM just after the imports (reset there with ``/proc/self/clear_refs``); peak MB =
the process's whole peak (curl: its ``ru_maxrss`` from GNU ``time``). Every download is hashed with
``openssl dgst -sha256`` and must equal the sandbox's own export file; ours must also report that digest.

    .venv/bin/python -m benchmarks.export [--size-mb 2048] [--json results.json]
"""

from __future__ import annotations

import argparse
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
from benchmarks.common import (
    CONN_ID,
    SETTLE_SECONDS,
    SandboxProcess,
    _busy,
    _cpu_busy,
    _curl_version,
    _fail,
    _finished,
    _free_page_reporting,
    _machine_info,
    _mb,
    _measured_child,
    _point_at,
    _prepare_environment,
    _ratio,
    _requests_delta,
    _run_measured,
    _settle,
    _spawn,
)

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
USER = {"name": "bench", "password": "bench-pw-123", "tenant": "BENCH"}
MiB = 1024 * 1024
PACKAGE_NAME = "export-bench-package"
SANDBOX_SECONDS = 0.2  # ingest_seconds and export_seconds: the floor the sandbox's emulation waits
TIME = shutil.which("time", path="/usr/bin:/bin")  # GNU time, for curl's peak RSS
SPEED_GOAL = 0.9  # ours / curl MiB/s
MEMORY_GOAL_MB = 100.0  # ours, RSS +MB

# (key, label)
DOWNLOADS: list[tuple[str, str]] = [
    ("ours", "ours download_to"),
    ("pypreservica", "pyPreservica download_opex"),
    ("curl", "curl -o"),
]


@dataclass
class Setup:
    generate_s: float
    build_s: float
    upload_s: float
    upload_mib_per_s: float
    ingest_s: float
    export_s: float
    export_bytes: int
    export_sha256: str
    asset_ref: str
    progress_token: str


@dataclass
class RunResult:
    key: str
    label: str
    bytes: int
    seconds: float
    mib_per_s: float
    rss_peak_mb: float | None
    rss_peak_increase_mb: float | None
    rss_after_imports_mb: float | None
    requests: int
    logins: int
    requests_by_route: dict[str, int]
    login_s: float | None
    transfer_mib_per_s: float | None
    cpu_s: float | None
    sandbox_cpu_s: float
    sha256: str
    sha256_s: float
    cache_mb: float | None  # the download's pages in the page cache right after the method (fincore)
    identical: bool | None
    hwm_reset: bool | None
    child: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- the measured methods (child side)
def _ours(spec: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_preservica.client.export import download_to
    from airflow_provider_preservica.hooks.preservica import PreservicaHook

    started = time.perf_counter()
    hook = PreservicaHook(CONN_ID)
    client = hook.get_conn()
    hook.token_cache.get_token()  # the login download_to's first request would make
    login_s = time.perf_counter() - started
    download = download_to(client, f"/api/entity/actions/exports/{spec['token']}/content", spec["dest"])
    return {
        "path": download.path,
        "bytes": download.bytes,
        "sha256": download.sha256,
        "resumes": download.resumes,
        "login_s": login_s,
    }


def _pypreservica(spec: dict[str, Any]) -> dict[str, Any]:
    from pyPreservica import EntityAPI

    env = spec["env"]
    os.chdir(spec["dir"])  # download_opex writes <token>.zip into the working directory
    started = time.perf_counter()
    client = EntityAPI(
        username=env["user"], password=env["password"], tenant=env["tenant"], server=env["server"], protocol="http"
    )
    login_s = time.perf_counter() - started
    name = client.download_opex(spec["token"])
    return {"path": str(Path(spec["dir"]) / name), "login_s": login_s}


def _verify(spec: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_preservica.export.verify import verify_archive

    check = verify_archive(spec["dest"])
    return {
        "files": check.files,
        "fixities_checked": check.fixities_checked,
        "mismatches": check.mismatches,
        "missing": check.missing,
        "ok": check.ok,
    }


METHODS = {"ours": _ours, "pypreservica": _pypreservica, "verify": _verify}
IMPORTS = {
    "ours": ["airflow_provider_preservica.hooks.preservica", "airflow_provider_preservica.client.export"],
    "pypreservica": ["pyPreservica"],
    "verify": ["airflow_provider_preservica.export.verify"],
}


# --------------------------------------------------------------------------- parent side
def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = harness.parser(__doc__, keep="the temporary directory (downloads, logs)", child=True)
    parser.add_argument("--size-mb", type=int, default=2048, help="the asset's bitstream in MiB (default 2048)")
    parser.add_argument(
        "--settle-seconds",
        type=float,
        default=SETTLE_SECONDS,
        help=f"pause after sync before each method (default {SETTLE_SECONDS:.0f}; see common._settle)",
    )
    args = parser.parse_args(argv)
    if args.size_mb < 1:
        parser.error("--size-mb must be at least 1")
    return args


def _cached_mb(path: Path) -> float | None:
    """MB of ``path`` in the page cache now (util-linux ``fincore``); None where fincore is missing."""
    if not shutil.which("fincore"):
        return None
    done = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)], capture_output=True)
    return int(done.stdout.split()[0]) / 1e6 if done.returncode == 0 and done.stdout.strip() else None


def _sha256(path: Path) -> str:
    """SHA-256 with ``openssl dgst`` (not our code, and as fast as hashlib here)."""
    done = subprocess.run(["openssl", "dgst", "-sha256", "-r", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"openssl dgst failed on {path}: {done.stderr}")
    return done.stdout.split()[0]


def _set_up(sandbox: SandboxProcess, tmp: Path, size_mb: int) -> Setup:
    """One asset with a ``size_mb`` MiB bitstream (OPEX package uploaded with our uploader), exported once."""
    from airflow_provider_preservica.client.export import ExportOptions, start_export
    from airflow_provider_preservica.client.progress import wait_for_progress
    from airflow_provider_preservica.client.upload import PackageUploader
    from airflow_provider_preservica.hooks.preservica import PreservicaHook
    from airflow_provider_preservica.ingest.packaging import build_opex_package

    started = time.perf_counter()
    source = tmp / "source" / PACKAGE_NAME
    source.mkdir(parents=True)
    with (source / "bitstream.bin").open("wb") as handle:
        for _ in range(size_mb):
            handle.write(os.urandom(MiB))
    generate_s = time.perf_counter() - started
    print(f"  generated {size_mb} MiB in {generate_s:.1f} s", file=sys.stderr, flush=True)

    started = time.perf_counter()
    manifest = build_opex_package(source, tmp / "package", security_tag="open", keep_staged=False)
    build_s = time.perf_counter() - started
    print(f"  built the package in {build_s:.1f} s", file=sys.stderr, flush=True)

    hook = PreservicaHook(CONN_ID)
    client = hook.get_conn()
    settings = hook.settings
    folder = hook.entities.create_folder("export benchmark", None, "open")
    uploader = PackageUploader(settings.base_url, settings.tenant, hook.token_cache, verify=settings.verify)
    upload = uploader.upload(str(manifest.zip_path), folder.ref)
    uploaded = time.time()
    progress = wait_for_progress(client, upload.progress_token, poll_interval=0.1, timeout=1800, what="ingest")
    status, finished = _finished(client, upload.progress_token)
    if not progress.succeeded or status != "COMPLETED":
        raise RuntimeError(f"the ingest ended {progress.status}: {progress.errors[:5]}")
    ingest_s = finished - uploaded
    print(f"  uploaded in {upload.seconds:.1f} s, ingested {ingest_s:.1f} s later", file=sys.stderr, flush=True)
    packages = [c for c in hook.entities.children(folder.ref) if c.title == PACKAGE_NAME]
    assets = list(hook.entities.children(packages[0].ref)) if len(packages) == 1 else []
    if len(assets) != 1 or assets[0].entity_type != "IO":
        raise RuntimeError(f"expected one asset in {PACKAGE_NAME}, found {assets}")
    asset = assets[0]
    # The content now lives in the sandbox: free the source and the package (their page cache too).
    shutil.rmtree(tmp / "source")
    shutil.rmtree(tmp / "package")
    os.sync()

    started_epoch = time.time()
    token = start_export(client, hook.entities.ns, asset.ref, "IO", ExportOptions())
    progress = wait_for_progress(client, token, poll_interval=0.1, timeout=1800, what="export")
    status, finished = _finished(client, token)
    if not progress.succeeded or status != "COMPLETED":
        raise RuntimeError(f"the export ended {progress.status}: {progress.errors[:5]}")
    export_s = finished - started_epoch
    jobs = [job for job in sandbox.control("GET", "/exports") if job["token"] == token]
    if len(jobs) != 1 or not jobs[0]["path"]:
        raise RuntimeError(f"the sandbox lists no file for export {token}: {jobs}")
    export_file = Path(jobs[0]["path"])
    export_sha256 = _sha256(export_file)
    os.sync()
    print(f"  exported {export_file.stat().st_size:,} bytes in {export_s:.1f} s", file=sys.stderr, flush=True)
    return Setup(
        generate_s=generate_s,
        build_s=build_s,
        upload_s=upload.seconds,
        upload_mib_per_s=upload.rate / MiB,
        ingest_s=ingest_s,
        export_s=export_s,
        export_bytes=export_file.stat().st_size,
        export_sha256=export_sha256,
        asset_ref=asset.ref,
        progress_token=token,
    )


def _run_curl(url: str, token: str, dest: Path, tmp: Path) -> dict[str, Any]:
    command = ["curl", "-sS", "--fail", "-o", str(dest), "-H", f"Preservica-Access-Token: {token}", url]
    log_path = tmp / "curl.log"
    rss_path = tmp / "curl.maxrss"
    # GNU time forks curl from its own small process and reports curl's ru_maxrss (KiB) and CPU time.
    timed = [TIME, "-f", "%M %U %S", "-o", str(rss_path), *command] if TIME else command
    code, wall = _spawn(timed, log_path)
    if code != 0:
        raise _fail("curl", code, log_path)
    usage = rss_path.read_text(encoding="ascii").split()[-3:] if TIME else None
    peak_kb = int(usage[0]) if usage else None
    cpu_s = float(usage[1]) + float(usage[2]) if usage else None
    return {"seconds": wall, "wall_s": wall, "peak_kb": peak_kb, "cpu_s": cpu_s, "path": str(dest)}


def _measure(
    key: str,
    label: str,
    sandbox: SandboxProcess,
    tmp: Path,
    setup: Setup,
    env: dict[str, str],
    token: str,
    settle_s: float,
) -> RunResult:
    """One download (or, for ``verify``, one ``verify_archive`` of ours) in a fresh process, counted by the sandbox."""
    downloads = tmp / "downloads"
    dest = downloads / f"{key}.zip"
    spec = {"token": setup.progress_token, "dest": str(dest), "dir": str(downloads / key), "env": env}
    _settle(settle_s)  # the previous download's pages flushed, and the same memory state for every method
    before = sandbox.control("GET", "/stats")
    sandbox_cpu = sandbox.cpu_seconds()
    if key == "curl":
        url = f"{env['url']}/api/entity/actions/exports/{setup.progress_token}/content"
        child = _run_curl(url, token, dest, tmp)
    elif key == "verify":
        child = _run_measured(HERE, "verify", {**spec, "method": "verify", "dest": str(downloads / "ours.zip")}, tmp)
        child["path"] = str(downloads / "ours.zip")
    else:
        (downloads / key).mkdir(exist_ok=True)
        child = _run_measured(HERE, key, {**spec, "method": key}, tmp)
    sandbox_cpu = sandbox.cpu_seconds() - sandbox_cpu
    after = sandbox.control("GET", "/stats")
    path = Path(child["path"])
    size = path.stat().st_size
    cache_mb = _cached_mb(path)  # before openssl reads it back
    started = time.perf_counter()
    digest = _sha256(path) if key != "verify" else ""
    sha256_s = time.perf_counter() - started
    login_s = 0.0 if key == "curl" else child.get("login_s")
    baseline = child.get("baseline_hwm_kb")
    routes = _requests_delta(before["requests"], after["requests"])
    result = RunResult(
        key=key,
        label=label,
        bytes=size,
        seconds=child["seconds"],
        mib_per_s=size / MiB / child["seconds"],
        rss_peak_mb=child["peak_kb"] / 1024 if child["peak_kb"] is not None else None,
        rss_peak_increase_mb=(child["hwm_kb"] - baseline) / 1024 if baseline is not None else None,
        rss_after_imports_mb=baseline / 1024 if baseline is not None else None,
        requests=sum(routes.values()),
        logins=sum(after["logins"].values()) - sum(before["logins"].values()),
        requests_by_route=routes,
        login_s=login_s,
        cpu_s=child.get("cpu_s"),
        sandbox_cpu_s=sandbox_cpu,
        transfer_mib_per_s=size / MiB / (child["seconds"] - login_s) if login_s is not None else None,
        sha256=digest,
        sha256_s=sha256_s,
        cache_mb=cache_mb,
        identical=(digest == setup.export_sha256 and size == setup.export_bytes) if digest else None,
        hwm_reset=child.get("hwm_reset"),
        child=child,
    )
    print(f"  {key:<13} {result.seconds:6.2f} s, {result.mib_per_s:6.0f} MiB/s", file=sys.stderr, flush=True)
    return result


def _machine(busy_at_start: float) -> dict[str, Any]:
    """Versions and the machine; ``busy_at_start`` = CPU share other processes used just before the run."""
    import requests

    return _machine_info(
        busy_at_start,
        requests=requests.__version__,
        curl=_curl_version(),
        free_page_reporting=_free_page_reporting(),
    )


def _goal(met: bool) -> str:
    return "met" if met else "NOT met"


def _reporting_text(reporting: bool | None) -> str:
    if reporting is None:
        return "no virtio balloon seen"
    return "on, freed memory goes back to the host" if reporting else "off"


def _report(setup: Setup, runs: list[RunResult], machine: dict[str, Any], size_mb: int, settle_s: float) -> str:
    lines = [
        f"Export download: one asset with a {size_mb:,} MiB bitstream of random bytes, exported once "
        f"({setup.export_bytes:,} bytes zip), downloaded 3 ways",
        f"Machine: {machine['cpus']} CPUs, {machine['memory_gb']} GB RAM, Python {machine['python']}, Airflow "
        f"{machine['airflow']}, pyPreservica {machine['pypreservica']}, requests {machine['requests']}, curl "
        f"{machine['curl']}, {machine['platform']}, {machine['date']}; CPUs busy just before "
        f"the run: {machine['busy_at_start']:.0%}",
        f"Setup (not compared): generate {setup.generate_s:.1f} s, build_opex_package {setup.build_s:.1f} s, upload "
        f"(ours) {setup.upload_s:.1f} s ({setup.upload_mib_per_s:.0f} MiB/s), ingest {setup.ingest_s:.1f} s, "
        f"export {setup.export_s:.1f} s",
        "",
    ]
    header = (
        f"{'method':<27} {'MiB':>5} {'seconds':>7} {'MiB/s':>5} {'login s':>7} {'CPU s':>5} {'sbx CPU s':>9} "
        f"{'busy':>4} {'peak MB':>7} {'RSS +MB':>7} {'base MB':>7} {'cache MB':>8} {'requests':>8} {'identical':>9}"
    )
    lines += [header, "-" * len(header)]
    for r in runs:
        identical = "n/a" if r.identical is None else ("yes" if r.identical else "NO")
        login = f"{r.login_s:>7.2f}" if r.login_s is not None else f"{'n/a':>7}"
        cpu = f"{r.cpu_s:>5.2f}" if r.cpu_s is not None else f"{'n/a':>5}"
        busy = f"{_busy(r.cpu_s, r.sandbox_cpu_s, r.seconds, machine['cpus']):>4.0%}" if r.cpu_s is not None else "n/a"
        lines.append(
            f"{r.label:<27} {r.bytes / MiB:>5.0f} {r.seconds:>7.2f} {r.mib_per_s:>5.0f} {login} {cpu} "
            f"{r.sandbox_cpu_s:>9.2f} {busy:>4} {_mb(r.rss_peak_mb, 7)} {_mb(r.rss_peak_increase_mb, 7)} "
            f"{_mb(r.rss_after_imports_mb, 7)} {_mb(r.cache_mb, 8)} {r.requests:>8} {identical:>9}"
        )
    by_key = {r.key: r for r in runs}
    ours, py, curl, verify = by_key["ours"], by_key["pypreservica"], by_key["curl"], by_key["verify"]
    speed = ours.mib_per_s / curl.mib_per_s
    transfer = (ours.transfer_mib_per_s or 0.0) / curl.mib_per_s
    curl_hashed = curl.seconds + curl.sha256_s
    equal_work = curl_hashed / ours.seconds
    memory = ours.rss_peak_increase_mb or 0.0
    both = ours.seconds + verify.seconds
    lines += [
        "",
        "Ratios ours / other (MiB/s: above 1 = ours faster; memory: below 1 = ours smaller):",
        f"  ours / curl, end to end (ours logs in, curl does not)  MiB/s {speed:.3g}  (goal >= {SPEED_GOAL}: "
        f"{_goal(speed >= SPEED_GOAL)})",
        f"  ours / curl, transfer only (ours' login taken out)     MiB/s {transfer:.3g}  (goal >= {SPEED_GOAL}: "
        f"{_goal(transfer >= SPEED_GOAL)})",
        f"  ours / (curl, then openssl dgst -sha256 of its file)   MiB/s {equal_work:.3g}  (the same result: the "
        f"file and its SHA-256; {curl.seconds:.2f} + {curl.sha256_s:.2f} s)",
        f"  ours / pyPreservica                                    MiB/s {_ratio(ours.mib_per_s, py.mib_per_s)}, "
        f"CPU s {_ratio(ours.cpu_s, py.cpu_s)}, RSS +MB "
        f"{_ratio(ours.rss_peak_increase_mb, py.rss_peak_increase_mb)}, peak MB "
        f"{_ratio(ours.rss_peak_mb, py.rss_peak_mb)}",
        f"  ours download memory: RSS +MB {memory:.1f} (goal < {MEMORY_GOAL_MB:.0f} MB: "
        f"{_goal(memory < MEMORY_GOAL_MB)}); the process's whole peak is {_mb(ours.rss_peak_mb, 0)} MB, of which "
        f"{_mb(ours.rss_after_imports_mb, 0)} MB",
        "  were there before the download started (Airflow, the provider, requests imported).",
        f"  ours download_to + verify_archive: {both:.2f} s ({ours.bytes / MiB / both:.0f} MiB/s end to end, "
        f"{_ratio(both, curl.seconds)}x curl's time)",
        "",
        "seconds = the method's call in its fresh subprocess, imports excluded, login included; login s = the part "
        "spent before the first",
        "byte (ours: hook, Connection, login; pyPreservica: its constructor: login, server version, user details); "
        "curl gets the",
        "parent's token: no login. CPU s = the process's CPU time (user + system, all threads; curl's from GNU "
        "time); sbx CPU s = the",
        f"sandbox process's CPU time over the same run; busy = (CPU s + sbx CPU s) / ({machine['cpus']} CPUs x "
        "seconds). A client CPU s close",
        "to its seconds means the client's own work (one thread) sets the pace. download_to computes the SHA-256 "
        "of every byte as it writes",
        "(it returns it); curl and pyPreservica do not, so at loopback speed ours does more work per byte; the "
        "third ratio compares",
        "equal results. verify_archive reads ours.zip in another fresh process: every member (CRC-32, and the "
        "sidecar's SHA-256",
        f"of the PAX zip), then every file in the PAX against its XIP fixity, so {ours.bytes / MiB:,.0f} MiB twice; "
        "its MiB/s is the file size / seconds "
        f"({verify.child.get('fixities_checked', 0)} fixities checked, {verify.child.get('files', 0)} content file"
        f"{'' if verify.child.get('files') == 1 else 's'}, ok: {verify.child.get('ok')}).",
        "peak MB = the process's whole peak RSS (imports included); RSS +MB = VmHWM after the run minus VmHWM "
        "just after the imports",
        "(reset there with /proc/self/clear_refs"
        + ("" if all(r.hwm_reset is not False for r in runs) else "; a reset was REFUSED")
        + "); base MB = that VmHWM after the imports. curl is not Python: peak MB is its",
        "ru_maxrss (GNU time), the other two n/a. cache MB = the downloaded file's pages in the page cache just "
        "after the method (fincore):",
        "memory the machine holds for it beyond the process (for verify_archive: what its reads left). identical = "
        "the file's SHA-256",
        "(openssl dgst) and size equal the sandbox's export file.",
        "The sandbox (uvicorn, one Python process, 1 MiB reads on a worker thread) serves every byte and shares the "
        f"{machine['cpus']} CPUs with the",
        "client. The export zip was written by the sandbox just before, so it is read from the page cache. curl "
        "and pyPreservica",
        "write the download into the page cache of the same disk; ours drops its pages behind the writes once "
        "they are on disk",
        "(client/filewrite.py) and fsyncs the file before the rename, so verify_archive reads it back from disk. "
        f"Before each method: sync, then {settle_s:g} s",
        "of pause, so that every method starts from the same memory state (free page reporting: "
        f"{_reporting_text(machine.get('free_page_reporting'))}; see",
        "common._settle). Methods run in table order, once each: repeated runs on a 2-CPU machine vary by 10-20 % "
        "(more when",
        "anything else runs), so smaller differences are noise. pyPreservica reads 4 KiB at a time "
        "(iter_content(CHUNK_SIZE)).",
        "",
        "Requests by route:",
    ]
    lines += [f"  {r.label:<27} " + ", ".join(f"{k} {v}" for k, v in r.requests_by_route.items()) for r in runs]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.child:
        return _measured_child(args.child, METHODS, IMPORTS)

    total_started = time.perf_counter()
    busy_at_start = _cpu_busy()  # anything else running skews the numbers: say so
    tmp = Path(tempfile.mkdtemp(prefix="preservica-bench-export-"))
    _prepare_environment(tmp)
    sandbox = harness.sandbox_process(tmp, USER)
    runs: list[RunResult] = []
    checks: list[str] = []
    try:
        sandbox.start()
        sandbox.control("POST", "/config", {"ingest_seconds": SANDBOX_SECONDS, "export_seconds": SANDBOX_SECONDS})
        env = _point_at(sandbox.base_url, USER)
        setup = _set_up(sandbox, tmp, args.size_mb)
        (tmp / "downloads").mkdir()

        from airflow_provider_preservica.hooks.preservica import PreservicaHook

        token = PreservicaHook(CONN_ID).get_token()  # curl's
        for key, label in [*DOWNLOADS[:1], ("verify", "ours verify_archive"), *DOWNLOADS[1:]]:
            runs.append(_measure(key, label, sandbox, tmp, setup, env, token, args.settle_seconds))
            if key != "ours":  # hashed (ours: and verified) already; free its pages for the next download
                Path(runs[-1].child["path"]).unlink()
        ours = next(r for r in runs if r.key == "ours")
        verify = next(r for r in runs if r.key == "verify")
        problems = [r.label for r in runs if r.identical is False]
        if problems:
            raise RuntimeError(f"not identical to the sandbox's export file: {problems}")
        if ours.child["sha256"] != setup.export_sha256:
            raise RuntimeError("download_to reported another SHA-256 than the file's")
        if not verify.child["ok"] or verify.child["fixities_checked"] < 1:
            raise RuntimeError(f"verify_archive: {verify.child}")
        checks += [
            f"the 3 downloads are byte-identical to the sandbox's export file ({setup.export_bytes:,} bytes, SHA-256 "
            f"{setup.export_sha256[:16]}...); download_to reported the same SHA-256",
            f"verify_archive: ok, {verify.child['fixities_checked']} fixities checked (sidecars and XIP), every "
            "CRC-32 intact",
            f"ours resumed {ours.child['resumes']} times",
        ]
    finally:
        sandbox.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    machine = _machine(busy_at_start)
    print(_report(setup, runs, machine, args.size_mb, args.settle_seconds))
    total_s = harness.conclude(args, total_started, checks=checks, note="setup included", kept=tmp)
    harness.write_json(
        args.json,
        {
            "benchmark": "export",
            "size_mb": args.size_mb,
            "sandbox_seconds": SANDBOX_SECONDS,
            "settle_seconds": args.settle_seconds,
            "machine": machine,
            "total_s": total_s,
            "setup": asdict(setup),
            "checks": checks,
            "results": [asdict(r) for r in runs],
        },
    )
    return 0


if __name__ == "__main__":
    harness.run(main)
