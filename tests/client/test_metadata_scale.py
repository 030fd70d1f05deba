"""A long corrections sheet runs in flat memory, against the real sandbox, and still writes nothing when a row fails.

Memory is measured with ``tracemalloc`` (every Python allocation of the process, deterministic): the peak
above the start of a run of 4N rows against that of N rows gives the memory held per row. Before, every
row's entity, plan and outcome were held from planning to writing, some 2-4 KB a row (42.7 MB for 10,000
rows in ``benchmarks/metadata.py``); now the sheet is streamed and each row's plan waits on disk.
"""

from __future__ import annotations

import csv
import gc
import logging
import os
import tempfile
import tracemalloc
from collections import Counter
from pathlib import Path

import pytest

from airflow_provider_preservica.hooks.preservica import PreservicaHook
from airflow_provider_preservica.metadata.model import Outcome
from airflow_provider_preservica.metadata.report import write_report

N = 300  # the small sheet; the large one has 4N rows
# Memory a row may add to the peak between 300 and 1,200 rows. Measured: 470-520 bytes (dry run) and 750-780
# (apply), partly the in-process sandbox's own; before the run streamed its sheet and kept its plans on disk:
# 2,700 (dry run) and 3,300 (apply). (The 100,000-row benchmark, sandbox out of process: 8.5 and 9.1 MB in all.)
BYTES_PER_ROW = 1024


@pytest.fixture
def assets(preservica_conn):
    preservica_conn.state.repository.seed(assets=5 * N, random_seed=11)
    refs = sorted(e.ref for e in preservica_conn.state.repository.entities(("IO",)))
    assert len(refs) >= 5 * N
    return preservica_conn, refs[: 5 * N]


def write_sheet(path: Path, refs: list[str], tag: str) -> str:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["reference", "title", "description"])
        for i, ref in enumerate(refs):
            writer.writerow([ref, f"{tag} title {i:06d}", f"{tag} description of record {i:06d}"])
    return str(path)


def routes(server) -> dict[str, int]:
    return {k: v for k, v in server.state.stats()["requests"].items() if not k.startswith("POST /api/accesstoken")}


def peak_growth(hook: PreservicaHook, sheet: str, dry_run: bool) -> tuple[float, Counter[Outcome]]:
    """The client's peak traced memory above the start while the sheet runs, and the run's counts.

    The sandbox runs in this process and keeps what is written (new titles...): what is still held once the
    run's result is dropped is the server's, and is taken off."""
    gc.collect()
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        result = hook.update_metadata(sheet, dry_run=dry_run)
        _, peak = tracemalloc.get_traced_memory()
        counts = result.counts()
        del result
        gc.collect()
        kept, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - start - max(kept - start, 0), counts


def test_memory_per_row_stays_flat_for_dry_run_and_apply(assets, tmp_path, caplog):
    server, refs = assets
    # Progress lines come every 10 s of wall time, so whether a run logs one depends on the machine's load:
    # keep them (and what they cost) out of the measurement.
    caplog.set_level(logging.WARNING, logger="airflow_provider_preservica.metadata.runner")  # not timed
    hook = PreservicaHook()
    small = write_sheet(tmp_path / "small.csv", refs[:N], "small")
    large = write_sheet(tmp_path / "large.csv", refs[N : 5 * N], "large")
    hook.update_metadata(small, dry_run=True)  # warm up: login, imports, caches, thread pool

    grown: dict[str, float] = {}
    for mode, dry_run in (("dry run", True), ("apply", False)):
        before = routes(server)
        wanted = Outcome.WOULD_CHANGE if dry_run else Outcome.CHANGED
        small_peak, small_counts = peak_growth(hook, small, dry_run)
        large_peak, large_counts = peak_growth(hook, large, dry_run)
        assert small_counts == {wanted: N} and large_counts == {wanted: 4 * N}
        grown[mode] = (large_peak - small_peak) / (3 * N)
        # Client requests do not grow beyond one read (and one write) a row.
        after = routes(server)
        used = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}
        expected = {"GET /api/entity/{path}/{ref}": 5 * N}
        if not dry_run:
            expected["PUT /api/entity/{path}/{ref}"] = 5 * N
        assert used == expected, used

    print(f"memory held per row: {grown}")
    assert all(per_row < BYTES_PER_ROW for per_row in grown.values()), (
        f"memory held per row: {grown} bytes (a row may hold at most {BYTES_PER_ROW})"
    )
    repo = server.state.repository
    assert repo.get(refs[5 * N - 1]).title == f"large title {4 * N - 1:06d}"


def test_a_failed_row_in_a_long_sheet_means_nothing_is_written(assets, tmp_path):
    server, refs = assets
    rows = refs[: 4 * N]
    missing = "0b7e1c52-0b7e-4f0e-9d2c-1e6b5a4c3d21"
    sheet = write_sheet(tmp_path / "late-failure.csv", [*rows, missing], "fixed")  # the very last row fails
    hook = PreservicaHook()
    titles = {ref: server.state.repository.get(ref).title for ref in rows}
    version = server.state.repository.version
    temp_dirs = {tempfile.gettempdir(), "/var/tmp"}

    run = hook.update_metadata(sheet)

    assert run.counts() == {Outcome.NOT_APPLIED: 4 * N, Outcome.NOT_FOUND: 1} and run.held_back
    assert server.state.repository.version == version
    assert not any(route.startswith(("PUT", "POST", "DELETE")) for route in routes(server))
    assert all(server.state.repository.get(ref).title == title for ref, title in titles.items())
    (failed,) = run.failed
    assert failed.row == 4 * N + 2 and missing in failed.message
    report = tmp_path / "late-failure.report.csv"
    write_report(run, str(report))
    with report.open(newline="", encoding="utf-8") as handle:
        lines = list(csv.reader(handle))
    assert len(lines) == 4 * N + 2 and lines[-1][3] == "not found" and lines[1][3] == "not applied"
    run.close()
    left = [name for d in temp_dirs if os.path.isdir(d) for name in os.listdir(d) if name.startswith("etilqs_")]
    assert left == []  # nothing left in temp space (SQLite's temporary files are named etilqs_*)
