"""``make demo``: the example DAGs end to end against the Preservica sandbox, on Airflow's embedded SQLite.

Starts the sandbox (500 seeded assets), delivers today's sample files to ``.demo/landing/<date>`` (one of
them with a name Preservica rejects), then runs with ``airflow dags test``: the nightly ingest (staging,
quarantine, OPEX with fixity, deferred wait, verification, sources filed to ``done/``, CSV report), the
search report, an export of the folder just ingested (verified and unpacked), and catalogue corrections
to that folder from a sample sheet (``.demo/corrections/corrections.csv``: a dry run, then the apply; then
the same sheet once more, which finds nothing left to change). It prints what happened.
Every process it started (the sandbox, a running ``airflow``) is stopped on the way out, also on failure
or Ctrl-C. Everything lives under ``.demo/``; a second run reuses it.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / ".demo"
AIRFLOW_HOME = DEMO / "airflow-home"
LANDING = DEMO / "landing"
REPORTS = DEMO / "reports"
EXPORTS = DEMO / "exports"
CORRECTIONS = DEMO / "corrections"
SHEET = CORRECTIONS / "corrections.csv"
DRY_RUN_REPORT = CORRECTIONS / "corrections.dry-run.csv"  # where PreservicaMetadataOperator puts them by default
APPLY_REPORT = CORRECTIONS / "corrections.report.csv"
BIN = Path(sys.executable).parent
USER, PASSWORD, TENANT = "archivist", "demo-Archivist-pw", "SANDBOX"
POOL = "preservica_ingest_preservica_default"
SAMPLES = {
    "minutes-1921.txt": "Minutes of the parish council, 3 March 1921.\n" * 200,
    "letters/letter-to-the-mayor.txt": "Dear Sir, I write concerning the bridge.\n" * 300,
    "letters/reply-from-the-mayor.txt": "Sir, thank you for your letter.\n" * 250,
    "letters/draft: reply?.txt": "Sir, (unfinished)\n",  # ':' and '?' fail an OPEX ingest: quarantined
}
DUBLIN_CORE = (
    '<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/">'
    "<dc:title>Minutes of the parish council, 3 March 1921</dc:title>"
    "<dc:creator>Parish council</dc:creator>"
    "<dc:subject>Bridges</dc:subject>"
    "<dc:date>1921-03-03</dc:date>"
    "<dc:type>Text</dc:type>"
    "<dc:language>en</dc:language>"
    "</oai_dc:dc>"
)
# The cataloguer's corrections, per delivered file; its asset is named by the SourceID the ingest report lists.
SHEET_COLUMNS = ["title", "description", "identifier:catalogue", "security_tag", "metadata"]
CORRECTIONS_BY_FILE = {
    "minutes-1921.txt": {
        "title": "Minutes of the parish council, 3 March 1921",
        "identifier:catalogue": "PC/1/1921/3",
        "metadata": DUBLIN_CORE,
        "security_tag": "open",  # ingested closed; cleared for public access
    },
    "letters/letter-to-the-mayor.txt": {
        "title": "Letter to the mayor concerning the bridge",
        "identifier:catalogue": "PC/2/14",
    },
    "letters/reply-from-the-mayor.txt": {
        "description": "The mayor's reply: the bridge is to be repaired in the spring.",
        "identifier:catalogue": "PC/2/15",
    },
}

# `airflow db migrate`, then `airflow pools set --include-deferred <POOL> 2 ...`, in one process
# (each start of Airflow costs seconds).
PREPARE = f"""
from airflow.utils import db
db.upgradedb()
from airflow.models.pool import Pool
Pool.create_or_update_pool({POOL!r}, 2, "Concurrent ingests into Preservica (preservica_default)", True)
print("pool {POOL}: 2 slots")
"""


def stop(process: subprocess.Popen[str]) -> None:
    """Stop a process we started, and everything it started (it leads its own process group)."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def start_sandbox() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "preservica_sandbox", "--port", "0",
         "--user", f"{USER}:{PASSWORD}:{TENANT}", "--token-lifetime", "900", "--seed-assets", "500"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("Preservica sandbox ready at "):
        stop(process)
        raise SystemExit(f"the sandbox did not start: {line!r}")
    return process, line.rsplit(" ", 1)[-1]


def deliver_today() -> tuple[str, Path]:
    """Today's delivery in ``.demo/landing/<date>`` (a second run delivers the same files again)."""
    day = datetime.now(timezone.utc).date().isoformat()
    folder = LANDING / day
    for name, text in SAMPLES.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return day, folder


def write_corrections(day: str) -> int:
    """The sample corrections sheet, its rows keyed by the SourceIDs in the day's ingest report."""
    with (REPORTS / f"ingest-{day}.csv").open(encoding="utf-8", newline="") as handle:
        source_ids = {row["path"]: row["source_id"] for row in csv.DictReader(handle)}
    CORRECTIONS.mkdir(parents=True, exist_ok=True)
    with SHEET.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, ["identifier_type", "identifier_value", *SHEET_COLUMNS])
        writer.writeheader()
        for path, corrections in CORRECTIONS_BY_FILE.items():
            writer.writerow({"identifier_type": "SourceID", "identifier_value": source_ids[path], **corrections})
    return len(CORRECTIONS_BY_FILE)


def outcomes(report: Path) -> Counter[str]:
    """``changed``, ``unchanged``... per row of a metadata report (``<sheet>.report.csv``, ``.dry-run.csv``)."""
    with report.open(encoding="utf-8", newline="") as handle:
        return Counter(row["outcome"] for row in csv.DictReader(handle))


def airflow_env(base_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))}
    env.update(
        AIRFLOW_HOME=str(AIRFLOW_HOME),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "example_dags"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{AIRFLOW_HOME}/airflow.db",
        AIRFLOW_VAR_PRESERVICA_LANDING_DIR=str(LANDING),
        AIRFLOW_VAR_PRESERVICA_REPORTS_DIR=str(REPORTS),
        AIRFLOW_VAR_PRESERVICA_REPORT_DIR=str(REPORTS),
        AIRFLOW_VAR_PRESERVICA_EXPORT_DIR=str(EXPORTS),
        AIRFLOW_VAR_PRESERVICA_CORRECTIONS_SHEET=str(SHEET),
        AIRFLOW_CONN_PRESERVICA_DEFAULT=json.dumps(
            {"conn_type": "preservica", "host": base_url, "login": USER, "password": PASSWORD,
             "extra": {"tenant": TENANT}}
        ),
    )  # fmt: skip
    return env


def run(step: str, args: list[str], env: dict[str, str], log: Path) -> str:
    """Run one command in its own process group; on failure (or Ctrl-C) nothing of it is left running."""
    print(f"-> {step}", flush=True)
    started = time.time()
    process = subprocess.Popen(
        args, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=600)
    finally:
        stop(process)
    log.write_text(output)
    states = re.findall(r"DagRun Finished: .*?state=(\w+)", output)
    if process.returncode != 0 or (states and states[-1] != "success"):
        tail = "\n".join(output.splitlines()[-25:])
        raise SystemExit(f"{step} failed (exit {process.returncode}); full log in {log}\n{tail}")
    print(f"   done in {time.time() - started:.1f} s (log: {log.relative_to(REPO)})", flush=True)
    return output


def sandbox_stats(base_url: str) -> dict:
    with urllib.request.urlopen(f"{base_url}/_sandbox/stats", timeout=10) as response:
        return json.load(response)


def main() -> int:
    # A plain `kill` (SIGTERM) unwinds like Ctrl-C, so the finally blocks stop what this script started.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    for folder in (AIRFLOW_HOME, REPORTS, EXPORTS):
        folder.mkdir(parents=True, exist_ok=True)
    airflow = str(BIN / "airflow")
    sandbox, base_url = start_sandbox()
    print(f"-> Preservica sandbox running at {base_url} (500 seeded assets)")
    try:
        env = airflow_env(base_url)
        run(f"airflow db migrate (SQLite) + pool {POOL} (2 slots)", [sys.executable, "-c", PREPARE], env,
            DEMO / "db-migrate.log")  # fmt: skip
        day, landing = deliver_today()
        outputs: list[tuple[str, str]] = []  # (dag_id, output), in the order they ran
        for dag_id, note in [
            ("preservica_nightly_ingest", "stage, quarantine, OPEX + fixity, upload, deferred wait, verify, file"),
            ("preservica_search_report", "CSV of every open asset"),
        ]:
            output = run(f"airflow dags test {dag_id}   ({note})", [airflow, "dags", "test", dag_id], env,
                         DEMO / f"{dag_id}.log")  # fmt: skip
            outputs.append((dag_id, output))
        summary = (REPORTS / f"ingest-{day}.txt").read_text(encoding="utf-8")
        folder_ref = re.search(r"parent folder\s*: (\S+)", summary)
        if not folder_ref or folder_ref.group(1) == "-":
            raise SystemExit(f"the nightly ingest did not name its Preservica folder; see {REPORTS}/ingest-{day}.txt")
        dag_id = "preservica_export_collection"
        output = run(
            f"airflow dags test {dag_id}   (the folder just ingested: export, verify, unpack)",
            [airflow, "dags", "test", dag_id, "-c", json.dumps({"collection_ref": folder_ref.group(1)})],
            env,
            DEMO / f"{dag_id}.log",
        )
        outputs.append((dag_id, output))
        rows = write_corrections(day)
        print(f"-> corrections sheet {SHEET.relative_to(REPO)}: {rows} rows, each naming its asset by SourceID")
        dag_id = "preservica_metadata_corrections"
        corrections: list[tuple[str, Counter[str], Counter[str]]] = []
        for label, note, log in [
            ("corrections", "dry run, then apply", f"{dag_id}.log"),
            ("same sheet again", "the same sheet once more: already applied", f"{dag_id}-again.log"),
        ]:
            for stale in (DRY_RUN_REPORT, APPLY_REPORT):
                stale.unlink(missing_ok=True)
            output = run(f"airflow dags test {dag_id}   ({note})", [airflow, "dags", "test", dag_id], env, DEMO / log)
            outputs.append((dag_id, output))
            corrections.append((label, outcomes(DRY_RUN_REPORT), outcomes(APPLY_REPORT)))
        if corrections[-1][2]["changed"]:
            raise SystemExit(f"the same sheet changed something a second time; see {APPLY_REPORT}")
        stats = sandbox_stats(base_url)
    finally:
        stop(sandbox)
        print("-> sandbox stopped")
    report(day, landing, outputs, corrections, stats)
    return 0


def show(label: str, value: str) -> None:
    print(f"  {label:<32}: {value}")


def counted(counts: Counter[str], *names: str) -> str:
    return ", ".join(f"{counts[name]} {name}" for name in names)


def report(
    day: str,
    landing: Path,
    outputs: list[tuple[str, str]],
    corrections: list[tuple[str, Counter[str], Counter[str]]],
    stats: dict,
) -> None:
    text = "\n".join(output for _, output in outputs)
    with (REPORTS / f"ingest-{day}.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    outcomes = Counter(row["outcome"] for row in rows)
    quarantined = [
        f"{row['path']} ({row['detail'].split(':', 1)[0]})" for row in rows if row["outcome"] == "quarantined"
    ]
    searches = sorted(REPORTS.glob(f"open-assets-{day}.csv"))
    exported = re.findall(r"Exported (\S+): ([\d,]+) bytes, (\d+) files", text)
    calls = sum(n for route, n in stats["requests"].items() if not route.startswith("POST /api/accesstoken"))
    states: dict[str, list[str]] = {}
    for dag_id, output in outputs:
        states.setdefault(dag_id, []).append(
            (re.findall(r"DagRun Finished: .*?state=(\w+)", output) or ["unknown"])[-1]
        )
    print()
    print("What happened")
    for dag_id, run_states in states.items():
        show(dag_id, ", ".join(run_states) + (f" ({len(run_states)} runs)" if len(run_states) > 1 else ""))
    show("delivery", f"{landing} ({len(rows)} files)")
    show(
        "assets ingested",
        f"{outcomes['created']} created, {outcomes['skipped']} already present, {outcomes['quarantined']} quarantined",
    )
    if quarantined:
        show("quarantined", f"{', '.join(quarantined)} -> {LANDING / 'quarantine'}")
    show("sources filed to", str(LANDING / "done" / day))
    show("ingest report", f"{REPORTS / f'ingest-{day}.csv'} (summary: ingest-{day}.txt)")
    if searches:
        hits = searches[-1].read_text(encoding="utf-8").count("\n") - 1
        show("search report", f"{searches[-1]} ({hits} open assets)")
    if exported:
        path, size, files = exported[-1]
        show("export", f"{path} ({size} bytes, {files} files, verified, unpacked)")
    if corrections:
        show("corrections sheet", f"{SHEET} (titles, a description, catalogue numbers, Dublin Core, a tag)")
    for label, dry, applied in corrections:
        show(f"{label}, dry run", f"{counted(dry, 'would change', 'unchanged')}, nothing written")
        show(f"{label}, applied", counted(applied, "changed", "unchanged"))
    if corrections:
        show("corrections reports", f"{DRY_RUN_REPORT} (dry run), {APPLY_REPORT.name} (applied)")
    logins = sum(stats["logins"].values())
    show("logins used", f"{logins} for {calls} API calls in {len(outputs)} runs")


if __name__ == "__main__":
    sys.exit(main())
