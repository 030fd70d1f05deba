"""Ingest of a ~1 GB package: hashing, OPEX build, upload and time to COMPLETED, ours vs pyPreservica vs curl.

One run generates ``--files`` files of random bytes (``--size-mb`` MiB in all, default 1024 MiB in 8 files) in
a temporary directory, then measures against one local Preservica sandbox, started as a separate process
(``python -m preservica_sandbox``) so that the client's memory is measured alone:

a. hashing: SHA-256 of every file with our ``hash_file`` (one file after the other, one thread) and
   ``hash_files`` (its thread pool, default workers), against ``sha256sum`` (one process for all files, and one
   process per file with ``xargs -P <CPUs>``) and ``openssl dgst -sha256`` (one process); all must agree;
b. building: ``build_opex_package(source, out, security_tag="open", keep_staged=False)`` (stage by hard link,
   hash, sidecars, manifests, stored zip, SHA-256 of the zip);
c. uploading that zip to the tenant's ``.package.upload`` bucket, each method in a fresh subprocess, each into
   its own new folder (so no ingest finds the previous one's assets and skips them):
   - ours: ``PackageUploader(...).upload(zip, parent_ref)`` with the hook's token cache (what
     ``PreservicaIngestOperator`` does): boto3 multipart, ``--threads`` threads (default 4);
   - pyPreservica: ``UploadAPI(...).upload_zip_package(zip, folder=parent_ref)`` (its constructor logs in and
     reads the server version and the user details; boto3 multipart with its own transfer settings);
   - curl: one ``PUT`` of the whole zip (``curl -T``) with the ``Preservica-Access-Token`` header instead of a
     SigV4 signature (the sandbox accepts it; the token comes from a login the parent made before).
   Time and peak RSS as in ``search.py``: VmHWM of ``/proc/self/status`` after the upload minus VmHWM just after
   the imports (reset there with ``/proc/self/clear_refs``); also the process's whole peak (the higher of the
   import peak and the upload peak), which is the only number curl has (its ``ru_maxrss``, from GNU ``time``);
d. time until COMPLETED: the parent waits with ``wait_for_progress`` and reads the progress token's
   ``Finished`` time; "ingest" is Finished minus the moment the upload returned, "total" is Finished minus
   the moment the method started (login included).

The sandbox runs with ``ingest_seconds`` 0.2 (the floor its ingest emulation waits, whatever the size). It
checks every asset's SHA-256 against its OPEX sidecar when it ingests, so COMPLETED with every file present
as an asset means the bytes arrived intact.

    .venv/bin/python -m benchmarks.ingest [--size-mb 1024] [--files 8] [--threads 4] [--json results.json]
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import harness
from benchmarks.common import (
    CONN_ID,
    SETTLE_SECONDS,
    _busy,
    _cpu_busy,
    _curl_version,
    _fail,
    _finished,
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
PACKAGE_NAME = "ingest-bench-package"
INGEST_SECONDS = 0.2
TIME = shutil.which("time", path="/usr/bin:/bin")  # GNU time, for curl's peak RSS
SAMPLE_INTERVAL = 0.05  # seconds between two readings of the sandbox's CPU time

# (key, label)
UPLOADS: list[tuple[str, str]] = [
    ("ours", "ours PackageUploader"),
    ("pypreservica", "pyPreservica upload_zip_package"),
    ("curl", "curl -T (one PUT)"),
]


@dataclass
class HashResult:
    key: str
    label: str
    workers: int
    bytes: int
    seconds: float
    mib_per_s: float


@dataclass
class BuildResult:
    seconds: float
    mib_per_s: float
    zip_bytes: int
    assets: int
    until_hashed_s: float
    zip_s: float
    zip_sha256_s: float


@dataclass
class UploadResult:
    key: str
    label: str
    bytes: int
    seconds: float
    mib_per_s: float
    login_s: float
    cpu_s: float | None
    sandbox_cpu_s: float
    ingest_s: float
    total_s: float
    status: str
    rss_peak_mb: float | None
    rss_peak_increase_mb: float | None
    rss_after_imports_mb: float | None
    requests: int
    logins: int
    requests_by_route: dict[str, int]
    hwm_reset: bool | None
    child: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- the upload methods (child side)
def _ours(spec: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_preservica.client.upload import PackageUploader, part_size_for
    from airflow_provider_preservica.hooks.preservica import PreservicaHook

    started = time.perf_counter()
    hook = PreservicaHook(CONN_ID)
    settings = hook.settings
    hook.token_cache.get_token()  # the login the uploader's first request would make
    login_s = time.perf_counter() - started
    uploader = PackageUploader(
        settings.base_url, settings.tenant, hook.token_cache, verify=settings.verify, max_concurrency=spec["threads"]
    )
    result = uploader.upload(spec["zip"], spec["parent_ref"])
    part = part_size_for(result.bytes)
    return {
        "token": result.progress_token,
        "key": result.key,
        "part_size": part,
        "threads": spec["threads"],
        "login_s": login_s,
    }


def _pypreservica(spec: dict[str, Any]) -> dict[str, Any]:
    from pyPreservica import UploadAPI

    env = spec["env"]
    started = time.perf_counter()
    client = UploadAPI(
        username=env["user"], password=env["password"], tenant=env["tenant"], server=env["server"], protocol="http"
    )
    login_s = time.perf_counter() - started
    token = client.upload_zip_package(spec["zip"], folder=spec["parent_ref"])
    from pyPreservica.uploadAPI import transfer_config  # module-wide; upload_zip_package sets the part size

    return {
        "token": token,
        "part_size": transfer_config.multipart_chunksize,
        "threads": transfer_config.max_request_concurrency,
        "login_s": login_s,
    }


METHODS = {"ours": _ours, "pypreservica": _pypreservica}
IMPORTS = {
    # boto3 is imported lazily by our uploader and at import time by pyPreservica: import it before the
    # baseline in both, so that neither delta counts the module import.
    "ours": [
        "airflow_provider_preservica.hooks.preservica",
        "airflow_provider_preservica.client.upload",
        "boto3",
        "boto3.s3.transfer",
    ],
    "pypreservica": ["pyPreservica", "boto3", "boto3.s3.transfer"],
}


# --------------------------------------------------------------------------- parent side
def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = harness.parser(__doc__, keep="the temporary directory (files, zip, logs)", child=True)
    parser.add_argument("--size-mb", type=int, default=1024, help="package content in MiB (default 1024)")
    parser.add_argument("--files", type=int, default=8, help="files (assets) the content is split into (default 8)")
    parser.add_argument("--threads", type=int, default=4, help="our uploader's max_concurrency (default 4)")
    args = parser.parse_args(argv)
    if args.size_mb < 1:
        parser.error("--size-mb must be at least 1")
    if not 1 <= args.files <= args.size_mb:
        parser.error("--files must be between 1 and --size-mb")
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    return args


class CpuSampler:
    """Samples a process's CPU time every ``SAMPLE_INTERVAL`` on a thread; ``at(epoch)`` reads the series back."""

    def __init__(self, read: Any) -> None:
        self.read = read
        self.samples: list[tuple[float, float]] = [(time.time(), read())]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL):
            with contextlib.suppress(OSError):
                self.samples.append((time.time(), self.read()))

    def start(self) -> CpuSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def at(self, epoch: float) -> float:
        """CPU seconds used by ``epoch`` (the last sample taken at or before it)."""
        index = bisect.bisect_right([t for t, _ in self.samples], epoch) - 1
        return self.samples[max(index, 0)][1]


def _make_files(source: Path, size_mb: int, files: int) -> list[Path]:
    """``files`` files of random bytes, ``size_mb`` MiB in all (the last takes the remainder)."""
    source.mkdir(parents=True)
    each = size_mb // files
    paths = []
    for index in range(files):
        path = source / f"file_{index + 1:03d}.bin"
        chunks = each if index < files - 1 else size_mb - each * (files - 1)
        with path.open("wb") as handle:
            for _ in range(chunks):
                handle.write(os.urandom(MiB))
        paths.append(path)
    return paths


def _read_all(paths: list[Path]) -> None:
    """One untimed read of every file, so that every hashing method finds them in the page cache."""
    buffer = bytearray(4 * MiB)
    for path in paths:
        with path.open("rb", buffering=0) as handle:
            while handle.readinto(buffer):
                pass


def _sha256sum(paths: list[Path], parallel: int) -> dict[Path, str]:
    if parallel > 1:
        command = ["xargs", "-0", "-n", "1", "-P", str(parallel), "sha256sum"]
        done = subprocess.run(command, input=b"\0".join(os.fsencode(p) for p in paths), capture_output=True)
    else:
        done = subprocess.run(["sha256sum", *map(str, paths)], capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"sha256sum failed: {done.stderr.decode(errors='replace')}")
    digests = {}
    for line in done.stdout.decode().splitlines():
        digest, _, name = line.partition("  ")
        digests[Path(name)] = digest
    return digests


def _openssl(paths: list[Path]) -> dict[Path, str]:
    done = subprocess.run(["openssl", "dgst", "-sha256", "-r", *map(str, paths)], capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"openssl dgst failed: {done.stderr.decode(errors='replace')}")
    digests = {}
    for line in done.stdout.decode().splitlines():
        digest, _, name = line.partition(" *")
        digests[Path(name)] = digest
    return digests


def _hashing(paths: list[Path]) -> tuple[list[HashResult], list[str]]:
    from airflow_provider_preservica.files.fixity import default_workers
    from airflow_provider_preservica.ingest.packaging import hash_file, hash_files

    total = sum(p.stat().st_size for p in paths)
    cpus = os.cpu_count() or 1
    _read_all(paths)
    runs: list[tuple[str, str, int, Any]] = [
        ("hash_file", "ours hash_file, file by file", 1, lambda: {p: hash_file(p).value() for p in paths}),
        (
            "hash_files",
            "ours hash_files (thread pool)",
            min(default_workers(), len(paths)),
            lambda: {p: f.value() for p, f in hash_files(paths).items()},
        ),
        ("sha256sum", "sha256sum, one process", 1, lambda: _sha256sum(paths, 1)),
        ("sha256sum_p", f"sha256sum, xargs -P {cpus}", min(cpus, len(paths)), lambda: _sha256sum(paths, cpus)),
        ("openssl", "openssl dgst -sha256, one process", 1, lambda: _openssl(paths)),
    ]
    results: list[HashResult] = []
    digests: dict[str, dict[Path, str]] = {}
    for key, label, workers, run in runs:
        started = time.perf_counter()
        digests[key] = run()
        seconds = time.perf_counter() - started
        results.append(HashResult(key, label, workers, total, seconds, total / MiB / seconds))
        print(f"  hashing {key:<12} {seconds:6.2f} s", file=sys.stderr, flush=True)
    reference = digests["sha256sum"]
    if set(reference) != set(paths):
        raise RuntimeError(f"sha256sum named other files: {sorted(reference)}")
    for key, found in digests.items():
        if found != reference:
            raise RuntimeError(f"{key}: SHA-256 digests differ from sha256sum's")
    return results, [f"the {len(runs)} hashing methods agree on all {len(paths)} SHA-256 digests"]


def _build(source: Path, out: Path) -> tuple[BuildResult, Any]:
    from airflow_provider_preservica.ingest.packaging import build_opex_package

    seen: dict[str, list[float]] = {}

    def progress(phase: str, done: int, total: int) -> None:
        now = time.perf_counter()
        seen.setdefault(phase, [now, now])[1] = now

    started = time.perf_counter()
    manifest = build_opex_package(source, out, security_tag="open", keep_staged=False, progress=progress)
    ended = time.perf_counter()
    hashed = seen["hash"][1]
    zipped = seen["zip"][1]
    result = BuildResult(
        seconds=ended - started,
        mib_per_s=manifest.total_bytes / MiB / (ended - started),
        zip_bytes=int(manifest.zip_size or 0),
        assets=manifest.asset_count,
        until_hashed_s=hashed - started,
        zip_s=zipped - hashed,
        zip_sha256_s=ended - zipped,
    )
    return result, manifest


def _upload_python(method: str, spec: dict[str, Any], tmp: Path) -> dict[str, Any]:
    return _run_measured(HERE, f"upload-{method}", {**spec, "method": method}, tmp, what=f"upload with {method}")


def _upload_curl(spec: dict[str, Any], token: str, bucket: str, tmp: Path) -> dict[str, Any]:
    headers_path = tmp / "upload-curl.headers"
    url = f"{spec['env']['url']}/api/s3/buckets/{bucket}/{uuid.uuid4()}.zip"
    command = ["curl", "-sS", "--fail-with-body", "-o", "/dev/null", "-D", str(headers_path), "-T", spec["zip"]]
    command += ["-H", f"Preservica-Access-Token: {token}"]
    command += ["-H", f"x-amz-meta-structuralobjectreference: {spec['parent_ref']}", url]
    log_path = tmp / "upload-curl.log"
    rss_path = tmp / "upload-curl.maxrss"
    # GNU time forks curl from its own small process and reports curl's ru_maxrss (KiB) and CPU time.
    timed = [TIME, "-f", "%M %U %S", "-o", str(rss_path), *command] if TIME else command
    started_epoch = time.time()
    code, wall = _spawn(timed, log_path)
    ended_epoch = time.time()
    if code != 0:
        raise _fail("upload with curl", code, log_path)
    usage = rss_path.read_text(encoding="ascii").split()[-3:] if TIME else None
    peak_kb = int(usage[0]) if usage else None
    cpu_s = float(usage[1]) + float(usage[2]) if usage else None
    progress_token = ""
    for line in headers_path.read_text(encoding="latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() == "preservica-progress-token":
            progress_token = value.strip()
    if not progress_token:
        raise RuntimeError("curl's PUT was answered without a Preservica-Progress-Token header")
    return {
        "token": progress_token,
        "seconds": wall,
        "started_epoch": started_epoch,
        "ended_epoch": ended_epoch,
        "peak_kb": peak_kb,
        "cpu_s": cpu_s,
        "wall_s": wall,
    }


def _check_ingested(hook: Any, folder_ref: str, expected: set[str]) -> None:
    """The method's folder holds the package folder, which holds one asset per file, titled by file name."""
    children = list(hook.entities.children(folder_ref))
    packages = [c for c in children if c.entity_type == "SO" and c.title == PACKAGE_NAME]
    if len(children) != 1 or len(packages) != 1:
        raise RuntimeError(f"folder {folder_ref}: expected one folder {PACKAGE_NAME!r}, found {children}")
    assets = list(hook.entities.children(packages[0].ref))
    titles = {a.title for a in assets if a.entity_type == "IO"}
    if len(assets) != len(expected) or titles != expected:
        raise RuntimeError(f"{PACKAGE_NAME}: {len(assets)} children {sorted(titles)}, expected {sorted(expected)}")


def _sha256sum_kind() -> str:
    """Whether coreutils' sha256sum uses OpenSSL's SHA-256 (linked to libcrypto) or its own portable code."""
    path = shutil.which("sha256sum")
    done = subprocess.run(["ldd", path], capture_output=True, text=True) if path else None
    if done is None or done.returncode != 0:
        return "coreutils (linkage unknown)"
    if "libcrypto" in done.stdout:
        return "coreutils linked to OpenSSL's libcrypto"
    return "coreutils' own portable SHA-256 (not linked to libcrypto)"


def _machine(busy_at_start: float) -> dict[str, Any]:
    """Versions and the machine; ``busy_at_start`` = CPU share other processes used just before the run."""
    import boto3

    cpuinfo = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    return _machine_info(
        busy_at_start,
        boto3=boto3.__version__,
        curl=_curl_version(),
        sha256sum=_sha256sum_kind(),
        sha_ni=" sha_ni" in cpuinfo,
    )


def _report(
    hashes: list[HashResult],
    build: BuildResult,
    uploads: list[UploadResult],
    machine: dict[str, Any],
    args: argparse.Namespace,
    generate_s: float,
    warm_up_s: float,
) -> str:
    size = hashes[0].bytes
    lines = [
        f"Ingest: {size / MiB:,.0f} MiB of random bytes in {args.files} files -> hash, OPEX package, upload, "
        "COMPLETED (local sandbox in its own process)",
        f"Machine: {machine['cpus']} CPUs, {machine['memory_gb']} GB RAM, Python {machine['python']}, Airflow "
        f"{machine['airflow']}, pyPreservica {machine['pypreservica']}, boto3 {machine['boto3']}, curl "
        f"{machine['curl']}, {machine['platform']}, {machine['date']}; CPUs busy just before "
        f"the run: {machine['busy_at_start']:.0%}",
        f"Files generated (os.urandom) in {generate_s:.1f} s.",
        "",
        "a. SHA-256 of every file (page cache warm)",
    ]
    header = f"  {'method':<34} {'workers':>7} {'MiB':>7} {'seconds':>8} {'MiB/s':>8}"
    lines += [header, "  " + "-" * (len(header) - 2)]
    for h in hashes:
        lines.append(f"  {h.label:<34} {h.workers:>7} {h.bytes / MiB:>7.0f} {h.seconds:>8.2f} {h.mib_per_s:>8.0f}")
    by_hash = {h.key: h for h in hashes}
    lines += [
        "  Ratios ours / other (MiB/s; above 1 = ours faster): hash_file / sha256sum one process "
        f"{_ratio(by_hash['hash_file'].mib_per_s, by_hash['sha256sum'].mib_per_s)}, hash_files / sha256sum xargs "
        f"{_ratio(by_hash['hash_files'].mib_per_s, by_hash['sha256sum_p'].mib_per_s)}, hash_file / openssl "
        f"{_ratio(by_hash['hash_file'].mib_per_s, by_hash['openssl'].mib_per_s)}",
        f"  sha256sum: {machine['sha256sum']}; hashlib and openssl use OpenSSL's SHA-256, which uses the "
        f"CPU's SHA extensions when present (sha_ni: {'yes' if machine['sha_ni'] else 'no'}).",
        "  hash_files' threads only help with several files and several free cores.",
        "",
        "b. build_opex_package (hard-link staging, hash, sidecars + manifests, stored zip, SHA-256 of the zip)",
        f"  {build.seconds:.2f} s for {size / MiB:,.0f} MiB ({build.mib_per_s:.0f} MiB/s of content): until hashed "
        f"{build.until_hashed_s:.2f} s, sidecars + manifests + zip {build.zip_s:.2f} s, zip SHA-256 "
        f"{build.zip_sha256_s:.2f} s; {build.assets} assets, zip {build.zip_bytes:,} bytes",
        "",
        "c./d. Upload of the zip, each in a fresh subprocess, then the sandbox's ingest until COMPLETED",
    ]
    header = (
        f"  {'method':<31} {'seconds':>7} {'MiB/s':>5} {'login s':>7} {'CPU s':>5} {'sbx CPU s':>9} {'busy':>4} "
        f"{'ingest s':>8} {'total s':>7} {'peak MB':>7} {'RSS +MB':>7} {'base MB':>7} {'requests':>8}"
    )
    lines += [header, "  " + "-" * (len(header) - 2)]
    for u in uploads:
        cpu = f"{u.cpu_s:>5.2f}" if u.cpu_s is not None else f"{'n/a':>5}"
        busy = f"{_busy(u.cpu_s, u.sandbox_cpu_s, u.seconds, machine['cpus']):>4.0%}" if u.cpu_s is not None else "n/a"
        lines.append(
            f"  {u.label:<31} {u.seconds:>7.2f} {u.mib_per_s:>5.0f} {u.login_s:>7.2f} {cpu} {u.sandbox_cpu_s:>9.2f} "
            f"{busy:>4} {u.ingest_s:>8.2f} {u.total_s:>7.2f} {_mb(u.rss_peak_mb, 7)} {_mb(u.rss_peak_increase_mb, 7)} "
            f"{_mb(u.rss_after_imports_mb, 7)} {u.requests:>8}"
        )
    by_key = {u.key: u for u in uploads}
    ours = by_key["ours"]
    lines += ["", "  Ratios ours / other (MiB/s: above 1 = ours faster; memory: below 1 = ours smaller):"]
    for other_key in ("pypreservica", "curl"):
        other = by_key[other_key]
        lines.append(
            f"    ours / {other.label:<31} MiB/s {_ratio(ours.mib_per_s, other.mib_per_s):>5}, CPU s "
            f"{_ratio(ours.cpu_s, other.cpu_s):>5}, total s "
            f"{_ratio(ours.total_s, other.total_s):>5}, peak MB {_ratio(ours.rss_peak_mb, other.rss_peak_mb):>5}, "
            f"RSS +MB {_ratio(ours.rss_peak_increase_mb, other.rss_peak_increase_mb):>5}"
        )
    py = by_key["pypreservica"]
    part = ours.child.get("part_size", 0) // MiB
    lines += [
        "",
        "seconds = the method's whole call in its subprocess, imports excluded, login included; login s = the part "
        "before the first upload",
        "request (ours: hook, Connection, login; pyPreservica: its constructor: login, server version, user "
        "details; curl: none, the",
        "parent's token is passed in). MiB/s = zip size / seconds. CPU s = the uploading process's CPU time (user + "
        "system, all threads;",
        "curl's from GNU time); sbx CPU s = the sandbox process's CPU time between the upload's start and its "
        "return (sampled every",
        f"{SAMPLE_INTERVAL * 1000:.0f} ms). busy = (CPU s + sbx CPU s) / ({machine['cpus']} CPUs x seconds): near "
        "100 % the machine, shared by",
        "client and sandbox, sets the pace, and a client that needs more CPU leaves the sandbox less.",
        f"ingest s = the progress token's Finished time minus the moment the upload call returned (sandbox "
        f"ingest_seconds {INGEST_SECONDS});",
        "total s = Finished minus the moment the method started. peak MB = the process's whole peak RSS "
        "(imports included; ours",
        "imports Airflow). RSS +MB = VmHWM after the upload minus VmHWM just after the imports (reset there with "
        "/proc/self/clear_refs"
        + ("" if all(u.hwm_reset is not False for u in uploads) else "; a reset was REFUSED")
        + ");",
        "base MB = that VmHWM after the imports. curl is not Python: its peak MB is its ru_maxrss (GNU time), "
        "the other two columns n/a.",
        f"ours: {ours.child.get('threads')} threads, {part} MiB parts; pyPreservica {machine['pypreservica']}: "
        f"{py.child.get('threads')} threads (boto3's default), {py.child.get('part_size', 0) // MiB} MiB parts "
        "(8 MiB up to 1 GiB, then 16);",
        "both sign every part over plain http, so boto3 computes each part's SHA-256 (x-amz-content-sha256), which "
        "the sandbox checks again.",
        "curl sends one unsigned PUT: no client hashing, no server SHA-256 check (only MD5 for the ETag), one "
        "request instead of one",
        "per part. The sandbox (uvicorn, one Python process) receives every byte and shares the "
        f"{machine['cpus']} CPUs with the client; each upload",
        f"waits for the previous ingest to finish. An untimed warm-up upload (ours) ran first: {warm_up_s:.2f} s "
        "(in trials the first upload",
        "of a run was 30-70 % slower than repeats, whichever method went first). Before each upload: sync and a "
        f"{SETTLE_SECONDS:g} s pause (common._settle), so that every method starts from the same memory state.",
        "ingest s is the sandbox's own work (read the zip, copy every file into its store with MD5, SHA-1, SHA-256 "
        "and SHA-512, check",
        "the sidecar's SHA-256), the same whichever method uploaded the zip.",
        "Hashing reads come from the page cache (the files were just written and read once, untimed): the table "
        "measures SHA-256",
        "speed, not the disk. One run per method: repeated runs on a 2-CPU machine vary by 10-20 %, so smaller "
        "differences are noise.",
        "",
        "Requests by route (upload runs):",
    ]
    lines += [f"  {u.label:<32} " + ", ".join(f"{k} {v}" for k, v in u.requests_by_route.items()) for u in uploads]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.child:
        return _measured_child(args.child, METHODS, IMPORTS)

    total_started = time.perf_counter()
    busy_at_start = _cpu_busy()  # anything else running skews the numbers: say so
    tmp = Path(tempfile.mkdtemp(prefix="preservica-bench-ingest-"))
    _prepare_environment(tmp)
    sandbox = harness.sandbox_process(tmp, USER)
    uploads: list[UploadResult] = []
    checks: list[str] = []
    sampler: CpuSampler | None = None
    try:
        sandbox.start()
        sandbox.control("POST", "/config", {"ingest_seconds": INGEST_SECONDS})
        env = _point_at(sandbox.base_url, USER)

        started = time.perf_counter()
        paths = _make_files(tmp / "source" / PACKAGE_NAME, args.size_mb, args.files)
        generate_s = time.perf_counter() - started
        print(f"  generated {args.size_mb} MiB in {generate_s:.1f} s", file=sys.stderr, flush=True)
        os.sync()  # no write-back of the new files competing with the measurements

        hashes, hash_checks = _hashing(paths)
        checks += hash_checks

        build, manifest = _build(paths[0].parent, tmp / "package")
        print(f"  built {manifest.zip_path} in {build.seconds:.1f} s", file=sys.stderr, flush=True)
        if build.assets != len(paths):
            raise RuntimeError(f"the package has {build.assets} assets, not {len(paths)}")
        expected = {p.name for p in paths}
        os.sync()

        from airflow_provider_preservica.client.progress import wait_for_progress
        from airflow_provider_preservica.client.upload import bucket_for
        from airflow_provider_preservica.hooks.preservica import PreservicaHook

        hook = PreservicaHook(CONN_ID)
        client = hook.get_conn()
        # Untimed warm-up: in trials the first upload of a run was 30-70 % slower than the same upload repeated,
        # whichever method went first (first writes to the sandbox's store, fresh memory in the VM).
        folder = hook.entities.create_folder("ingest benchmark: warm-up", None, "open")
        spec = {"zip": manifest.zip_path, "parent_ref": folder.ref, "threads": args.threads, "env": env}
        warm = _upload_python("ours", spec, tmp)
        wait_for_progress(client, warm["token"], poll_interval=0.1, timeout=1800, what="ingest")
        warm_up_s = warm["seconds"]
        print(f"  warm-up upload (ours) {warm_up_s:6.2f} s", file=sys.stderr, flush=True)
        sampler = CpuSampler(sandbox.cpu_seconds).start()
        for key, label in UPLOADS:
            folder = hook.entities.create_folder(f"ingest benchmark: {key}", None, "open")
            spec = {"zip": manifest.zip_path, "parent_ref": folder.ref, "threads": args.threads, "env": env}
            _settle()  # the previous ingest's files flushed, and the same memory state for every method
            before = sandbox.control("GET", "/stats")
            if key == "curl":
                child = _upload_curl(spec, hook.get_token(), bucket_for(USER["tenant"]), tmp)
            else:
                child = _upload_python(key, spec, tmp)
            after = sandbox.control("GET", "/stats")
            # The upload's share: its ingest starts as the upload returns, while the subprocess is still exiting.
            sandbox_cpu = sampler.at(child["ended_epoch"]) - sampler.at(child["started_epoch"])
            progress = wait_for_progress(client, child["token"], poll_interval=0.1, timeout=1800, what="ingest")
            status, finished = _finished(client, child["token"])
            if not progress.succeeded or status != "COMPLETED":
                raise RuntimeError(f"{key}: the ingest ended {progress.status}: {progress.errors[:5]}")
            _check_ingested(hook, folder.ref, expected)
            routes = _requests_delta(before["requests"], after["requests"])
            logins = sum(after["logins"].values()) - sum(before["logins"].values())
            baseline = child.get("baseline_hwm_kb")
            uploads.append(
                UploadResult(
                    key=key,
                    label=label,
                    bytes=int(manifest.zip_size),
                    seconds=child["seconds"],
                    mib_per_s=manifest.zip_size / MiB / child["seconds"],
                    login_s=child.get("login_s", 0.0),
                    cpu_s=child.get("cpu_s"),
                    sandbox_cpu_s=sandbox_cpu,
                    ingest_s=finished - child["ended_epoch"],
                    total_s=finished - child["started_epoch"],
                    status=status,
                    rss_peak_mb=child["peak_kb"] / 1024 if child["peak_kb"] is not None else None,
                    rss_peak_increase_mb=(child["hwm_kb"] - baseline) / 1024 if baseline is not None else None,
                    rss_after_imports_mb=baseline / 1024 if baseline is not None else None,
                    requests=sum(routes.values()),
                    logins=logins,
                    requests_by_route=routes,
                    hwm_reset=child.get("hwm_reset"),
                    child=child,
                )
            )
            print(
                f"  upload {key:<13} {child['seconds']:6.2f} s, COMPLETED {finished - child['ended_epoch']:.2f} s "
                "later",
                file=sys.stderr,
                flush=True,
            )
        checks.append(
            f"all {len(uploads)} uploads ingested COMPLETED, each into its own folder as {PACKAGE_NAME}/ with one "
            f"asset per file ({len(paths)}, titled by file name); the sandbox checked every asset's SHA-256 "
            "against its sidecar"
        )
    finally:
        if sampler is not None:
            sampler.stop()
        sandbox.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    machine = _machine(busy_at_start)
    print(_report(hashes, build, uploads, machine, args, generate_s, warm_up_s))
    total_s = harness.conclude(args, total_started, checks=checks, kept=tmp)
    harness.write_json(
        args.json,
        {
            "benchmark": "ingest",
            "size_mb": args.size_mb,
            "files": args.files,
            "threads": args.threads,
            "ingest_seconds": INGEST_SECONDS,
            "machine": machine,
            "total_s": total_s,
            "generate_s": generate_s,
            "warm_up_upload_s": warm_up_s,
            "checks": checks,
            "hashing": [asdict(h) for h in hashes],
            "build": asdict(build),
            "uploads": [asdict(u) for u in uploads],
        },
    )
    return 0


if __name__ == "__main__":
    harness.run(main)
