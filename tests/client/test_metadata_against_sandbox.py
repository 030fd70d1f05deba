"""Bulk metadata updates through the hook against the real sandbox: exact, idempotent, safe to retry."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from airflow_provider_preservica.exceptions import PreservicaError
from airflow_provider_preservica.hooks.preservica import PreservicaHook
from airflow_provider_preservica.metadata.model import Outcome
from tests.support import REPO
from tests.support.sandbox import inject, logins

DC = "http://purl.org/dc/elements/1.1/"
ROWS = 1000


def dc(title: str) -> str:
    return f'<dc:dc xmlns:dc="{DC}"><dc:title>{title}</dc:title><dc:subject>corrections</dc:subject></dc:dc>'


def writes(server) -> int:
    """Requests that could change the repository (the login is a POST too, but changes nothing there)."""
    return sum(
        n
        for route, n in server.state.stats()["requests"].items()
        if not route.startswith(("GET", "POST /api/accesstoken"))
    )


def wanted_rows(assets, folders):
    """Every asset: new title and description, a shelfmark, a Dublin Core fragment; some retagged or moved."""
    rows = []
    for i, asset in enumerate(assets):
        row = {
            "reference": asset.ref,
            "title": f"Corrected title {i}",
            "description": f"Catalogued again in 2026 ({i})",
            "identifier:shelfmark": f"SH-{i:05d}",
            "metadata": dc(f"Corrected title {i}"),
        }
        if i % 10 == 0:
            row["security_tag"] = "closed" if asset.security_tag != "closed" else "open"
        if i % 20 == 1:
            row["parent"] = next(f.ref for f in folders if f.ref != asset.parent)
        rows.append(row)
    return rows


def check_repository(server, rows) -> None:
    """The sandbox holds exactly what the rows ask for: nothing missing, nothing doubled."""
    repo = server.state.repository
    wrong = []
    for row in rows:
        entity = repo.get(row["reference"])
        fragments = [f for f in entity.metadata if f.schema == DC]
        shelfmarks = [i.value for i in entity.identifiers if i.type == "shelfmark"]
        ok = (
            entity.title == row["title"]
            and entity.description == row["description"]
            and shelfmarks == [row["identifier:shelfmark"]]
            and len(fragments) == 1
            and row["title"] in fragments[0].xml
            and entity.security_tag == row.get("security_tag", entity.security_tag)
            and entity.parent == row.get("parent", entity.parent)
        )
        if not ok:
            wrong.append(row["reference"])
    assert wrong == [], f"{len(wrong)} entities are not in the wanted state, e.g. {wrong[:3]}"


@pytest.fixture
def repository(preservica_conn):
    preservica_conn.state.repository.seed(assets=ROWS, random_seed=7)
    preservica_conn.state.update_config({"entity_action_seconds": 0.05})
    repo = preservica_conn.state.repository
    assets = sorted(repo.entities(("IO",)), key=lambda e: e.ref)[:ROWS]
    folders = [f for f in repo.entities(("SO",)) if f.parent is not None]
    return preservica_conn, assets, folders


def write_csv(path: Path, rows) -> str:
    import csv

    columns = sorted({key for row in rows for key in row}, key=lambda c: (c != "reference", c))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def test_a_thousand_row_sheet_dry_run_then_apply_then_rerun(repository, tmp_path):
    server, assets, folders = repository
    rows = wanted_rows(assets, folders)
    sheet = write_csv(tmp_path / "corrections.csv", rows)
    hook = PreservicaHook()
    version = server.state.repository.version

    preview = hook.update_metadata(sheet, dry_run=True)
    assert preview.counts() == {Outcome.WOULD_CHANGE: ROWS}
    assert writes(server) == 0 and server.state.repository.version == version
    first = preview.outcomes[0]
    assert f"title {assets[0].title!r} -> 'Corrected title 0'" in first.changes[0]
    assert "identifier shelfmark 'SH-00000' added" in first.changes
    assert any(c.startswith("security tag") for c in first.changes)

    applied = hook.update_metadata(sheet)
    assert applied.counts() == {Outcome.CHANGED: ROWS} and not applied.pending
    check_repository(server, rows)

    before = writes(server)
    again = hook.update_metadata(sheet)
    assert again.counts() == {Outcome.UNCHANGED: ROWS}
    assert writes(server) == before  # a re-run writes nothing at all
    assert logins(server) == 1


def test_a_500_burst_half_way_then_a_retry_reaches_the_same_state(repository):
    server, assets, folders = repository
    rows = wanted_rows(assets, folders)
    inject(server, kind="status", status=500, route="PUT /api/entity/information-objects/*", count=40)
    # The server stores these fragments but the answer never arrives: the client cannot know they landed.
    inject(server, kind="drop_after_bytes", bytes=0, route="POST /api/entity/information-objects/*/metadata", count=5)
    hook = PreservicaHook()
    first = hook.update_metadata(rows)
    rejected = [o for o in first.outcomes if o.outcome is Outcome.REJECTED]
    assert len(rejected) == 45 and first.counts()[Outcome.CHANGED] == ROWS - 45
    assert all("HTTP 500" in o.message or "connection" in o.message.lower() for o in rejected)

    retry = hook.update_metadata(rows)
    assert not retry.failed
    changed_now = {o.row for o in retry.outcomes if o.outcome is Outcome.CHANGED}
    put_failed = {o.row for o in rejected if "HTTP 500" in o.message}
    assert len(put_failed) == 40 and put_failed <= changed_now <= {o.row for o in rejected}
    check_repository(server, rows)  # in particular: no entity carries its fragment twice


def test_token_expiry_mid_run_costs_one_login(repository):
    server, assets, _folders = repository
    rows = [{"reference": a.ref, "title": f"T{i}"} for i, a in enumerate(assets)]
    hook = PreservicaHook()
    result = {}
    worker = threading.Thread(target=lambda: result.setdefault("run", hook.update_metadata(rows, max_workers=8)))
    worker.start()
    deadline = time.monotonic() + 60
    while sum(server.state.stats()["requests"].values()) < ROWS // 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    inject(server, kind="expire_tokens", user="archivist")
    worker.join(120)
    assert result["run"].counts() == {Outcome.CHANGED: ROWS}
    assert logins(server) == 2  # the first login, and exactly one more after the expiry, for 8 threads


def test_worker_killed_half_way_then_retry_gives_the_same_state(repository, tmp_path):
    server, assets, folders = repository
    rows = wanted_rows(assets, folders)
    sheet = write_csv(tmp_path / "corrections.csv", rows)
    inject(server, kind="latency", seconds=0.005, route="POST /api/entity/*")
    script = (
        "import sys\nfrom airflow_provider_preservica.hooks.preservica import PreservicaHook\n"
        f"PreservicaHook().update_metadata({sheet!r}, max_workers=4)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env=dict(os.environ), start_new_session=True)
    deadline = time.monotonic() + 120
    while writes(server) < ROWS and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.02)
    assert child.poll() is None, "the run finished before it could be killed"
    os.killpg(child.pid, signal.SIGKILL)
    child.wait(10)
    server.state.faults.clear()
    half_done = writes(server)

    retry = PreservicaHook().update_metadata(sheet)
    counts = retry.counts()
    assert counts[Outcome.UNCHANGED] > 0 and counts[Outcome.CHANGED] > 0, counts  # it really stopped half way
    assert counts[Outcome.CHANGED] + counts[Outcome.UNCHANGED] == ROWS and not retry.failed
    assert writes(server) > half_done
    check_repository(server, rows)


def test_rows_that_cannot_be_applied_stop_everything_before_the_first_write(repository):
    server, assets, _folders = repository
    code = next(i.value for i in assets[3].identifiers if i.type == "code")
    rows = [
        {"reference": assets[0].ref, "title": "Fine"},
        {"reference": "00000000-0000-4000-8000-000000000000", "title": "Nobody"},
        {"identifier_type": "catalogue-ref", "identifier_value": "COLL-1", "title": "Which?"},
        {"identifier_type": "code", "identifier_value": code, "title": "Found by code"},
        {"reference": assets[1].ref, "security_tag": "top-secret"},
        {"reference": assets[2].ref, "parent": "00000000-0000-4000-8000-00000000abcd"},
        {"reference": assets[0].ref, "description": "Twice"},
    ]
    hook = PreservicaHook()
    run = hook.update_metadata(rows)
    by_row = {o.row: o for o in run.outcomes}
    assert writes(server) == 0 and run.held_back
    assert by_row[2].outcome is Outcome.NOT_FOUND and "00000000-0000-4000-8000-000000000000" in by_row[2].message
    assert by_row[3].outcome in (Outcome.AMBIGUOUS, Outcome.NOT_FOUND)
    if by_row[3].outcome is Outcome.AMBIGUOUS:
        assert "use the reference column" in by_row[3].message
    assert by_row[4].outcome is Outcome.NOT_APPLIED and by_row[4].ref == assets[3].ref
    assert by_row[5].outcome is Outcome.INVALID and "'top-secret' is not one this account may use" in by_row[5].message
    assert by_row[6].outcome is Outcome.NOT_FOUND and "no parent folder" in by_row[6].message
    assert by_row[1].outcome is by_row[7].outcome is Outcome.INVALID and "rows 1 and 7" in by_row[7].message

    partial = hook.update_metadata(rows, allow_partial=True)
    assert partial.counts()[Outcome.CHANGED] == 1
    assert server.state.repository.get(assets[3].ref).title == "Found by code"


def test_replace_mode_leaves_exactly_one_fragment_and_add_mode_never_doubles(repository):
    server, assets, _ = repository
    repo = server.state.repository
    ref = assets[0].ref
    repo.add_metadata(ref, DC, dc("first copy").replace("dc:", "x:").replace("xmlns:dc", "xmlns:x"))
    repo.add_metadata(ref, DC, dc("second copy"))
    hook = PreservicaHook()
    outcome = hook.update_entity(ref, metadata=dc("the one"))
    assert outcome.outcome is Outcome.CHANGED
    assert outcome.changes == [f"fragment {DC} replaced", f"extra fragment {DC} removed"]
    assert [f.xml.count("the one") for f in repo.get(ref).metadata if f.schema == DC] == [1]
    assert hook.update_entity(ref, metadata=dc("the one")).outcome is Outcome.UNCHANGED
    assert hook.update_entity(ref, metadata=dc("another"), metadata_mode="add").outcome is Outcome.CHANGED
    assert hook.update_entity(ref, metadata=dc("another"), metadata_mode="add").outcome is Outcome.UNCHANGED
    assert len([f for f in repo.get(ref).metadata if f.schema == DC]) == 2


def test_single_entity_helper_waits_for_tag_and_move_and_raises_on_failure(repository):
    server, assets, folders = repository
    asset = assets[0]
    home = asset.parent  # the sandbox's own entity objects change as the repository does
    target = next(f for f in folders if f.ref != home)
    hook = PreservicaHook()
    outcome = hook.update_entity(
        asset.ref, security_tag="closed" if asset.security_tag != "closed" else "open", parent=target.ref
    )
    entity = server.state.repository.get(asset.ref)
    assert outcome.outcome is Outcome.CHANGED and entity.parent == target.ref
    inject(server, kind="fail_entity_action", action="move", ref=asset.ref, message="folder is locked for review")
    with pytest.raises(PreservicaError, match="folder is locked for review"):
        hook.update_entity(asset.ref, parent=home)
    assert server.state.repository.get(asset.ref).parent == target.ref


def test_fragments_from_elsewhere_are_bad_rows_before_any_write_unless_the_hook_allows_them(repository, tmp_path):
    server, assets, _ = repository
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "dc.xml").write_text(dc("Shared record"), encoding="utf-8")
    (tmp_path / "sheets").mkdir()
    sheet = write_csv(
        tmp_path / "sheets" / "fix.csv",
        [
            {"reference": assets[0].ref, "metadata_file": "../shared/dc.xml"},
            {"reference": assets[1].ref, "metadata": "<!DOCTYPE x [<!ENTITY e 'E'>]>" + dc("&e;")},
            {"reference": assets[2].ref, "metadata": dc("x" * 2048)},
        ],
    )
    hook = PreservicaHook()
    run = hook.update_metadata(sheet, max_fragment_bytes=1024)
    assert [o.outcome for o in run.outcomes] == [Outcome.INVALID] * 3 and writes(server) == 0
    assert ["is outside" in run.outcomes[0].message, "DTD" in run.outcomes[1].message] == [True, True]
    assert "larger than 1,024 bytes" in run.outcomes[2].message

    allowed = hook.update_metadata(sheet, metadata_root=tmp_path, allow_partial=True)
    assert [o.outcome for o in allowed.outcomes] == [Outcome.CHANGED, Outcome.INVALID, Outcome.CHANGED]
    assert any("Shared record" in f.xml for f in server.state.repository.get(assets[0].ref).metadata)
