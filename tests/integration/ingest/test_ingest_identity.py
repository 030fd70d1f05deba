"""What identifies an ingested file (issue 18 items 1-2, issue 19 item 7), in real Airflow against the sandbox.

A file is its target folder, its delivery's SourceID namespace and its relative path; it is skipped only
when an asset below the target carries its SourceID *and* its content. Other content there is a conflict.
Two runs ingesting the same files into one folder at once never duplicate them.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from airflow_provider_preservica.client.search import SearchQuery
from airflow_provider_preservica.hooks.preservica import PreservicaHook
from tests.support import REPO
from tests.support.airflow_db import sync_test_dags, task_states
from tests.support.sandbox import MAPS_FOLDER, connection_json
from tests.support.session import SESSION_LOG

pytestmark = pytest.mark.integration

LETTERS_FOLDER = "a0000000-0000-4000-8000-000000000003"


def make_delivery(root: Path, salt: str, files: int = 3, name: str = "batch") -> tuple[Path, dict[str, bytes]]:
    """``<root>/<name>/f0..fN``: same names in every delivery, content that depends on ``salt``."""
    folder = root / name
    folder.mkdir(parents=True)
    contents = {}
    for index in range(files):
        data = hashlib.sha256(f"{salt}-{index}".encode()).digest() * 64
        (folder / f"f{index}.bin").write_bytes(data)
        contents[f"f{index}.bin"] = data
    return folder, contents


def _report(dag_run):
    return dag_run.get_task_instance("ingest").xcom_pull(task_ids="ingest")


def _assets_titled(prefix: str = "f") -> list:
    hits = PreservicaHook().search(
        SearchQuery(filters={"xip.document_type": "IO"}, fields=["xip.title", "xip.parent_hierarchy"])
    )
    return [h for h in hits if str(h.value("xip.title")).startswith(prefix)]


def _stored_sha256(ref: str) -> str:
    (bitstream,) = PreservicaHook().entities.bitstreams(ref)
    return str(bitstream.fixity("SHA-256"))


def _requests(server) -> dict[str, int]:
    return dict(server.state.stats()["requests"])


@pytest.fixture
def quick_ingests(small_repository):
    small_repository.state.update_config({"ingest_seconds": 0.5})
    return small_repository


def test_same_names_with_other_content_into_another_folder_are_ingested_not_skipped(quick_ingests, run_dag, tmp_path):
    """x/batch into one folder, then w/batch (same names, other content) into another: both are stored."""
    x, _ = make_delivery(tmp_path / "x", "x")
    w, w_contents = make_delivery(tmp_path / "w", "w")
    run_dag("ingest_dags.py", "ingest_polling_dag", run_conf={"source": str(x), "parent": MAPS_FOLDER})

    dag_run = run_dag("ingest_dags.py", "ingest_polling_dag", run_conf={"source": str(w), "parent": LETTERS_FOLDER})

    report = _report(dag_run)
    assert task_states(dag_run) == {"ingest[-1]": "success"}
    assert report["state"] == "COMPLETED" and report["created_count"] == 3 and report["skipped_existing"] == 0
    assert report["verified"] == 3 and report["errors"] == []
    expected = sorted(hashlib.sha256(data).hexdigest() for data in w_contents.values())
    assert sorted(_stored_sha256(ref) for ref in report["created_refs"]) == expected
    in_letters = [h for h in _assets_titled() if LETTERS_FOLDER in (h.value("xip.parent_hierarchy") or [])]
    assert sorted(h.reference for h in in_letters) == sorted(report["created_refs"])


def test_same_names_with_other_content_into_the_same_folder_fail_as_a_conflict_every_time(
    quick_ingests, run_dag, tmp_path, capfd
):
    """y/batch after x/batch into one folder: never green, never silently skipped, nothing uploaded."""
    x, x_contents = make_delivery(tmp_path / "x", "x")
    y, _ = make_delivery(tmp_path / "y", "y")
    run_dag("ingest_dags.py", "ingest_polling_dag", run_conf={"source": str(x), "parent": MAPS_FOLDER})
    puts = sum(n for k, n in _requests(quick_ingests).items() if k.startswith("PUT /api/s3"))

    first = run_dag("ingest_dags.py", "ingest_polling_dag", run_conf={"source": str(y), "parent": MAPS_FOLDER})
    again = run_dag("ingest_dags.py", "ingest_polling_dag", run_conf={"source": str(y), "parent": MAPS_FOLDER})

    assert task_states(first) == task_states(again) == {"ingest[-1]": "failed"}
    output = "".join(capfd.readouterr())
    assert "3 file(s) conflict with assets already in the target folder" in output
    assert "f0.bin: SourceID" in output and "source_id_namespace" in output
    assert sum(n for k, n in _requests(quick_ingests).items() if k.startswith("PUT /api/s3")) == puts
    stored = sorted(_stored_sha256(h.reference) for h in _assets_titled())
    assert stored == sorted(hashlib.sha256(d).hexdigest() for d in x_contents.values())  # x's, untouched


def test_conflicts_can_be_left_out_on_request_and_are_listed(quick_ingests, run_dag, tmp_path):
    x, _ = make_delivery(tmp_path / "x", "x", files=2)
    y, _ = make_delivery(tmp_path / "y", "y", files=2)
    (y / "new.bin").write_bytes(b"only in y" * 100)
    run_dag("ingest_dags.py", "ingest_polling_dag", run_conf={"source": str(x), "parent": MAPS_FOLDER})

    dag_run = run_dag(
        "ingest_identity_dags.py", "conflicts_skipped_dag", run_conf={"source": str(y), "parent": MAPS_FOLDER}
    )

    report = _report(dag_run)
    assert task_states(dag_run) == {"ingest[-1]": "success"}
    assert report["created_count"] == 1 and report["assets_sent"] == 1
    assert len(report["conflicts"]) == 2 and all("other content" in c for c in report["conflicts"])


def test_a_rerun_with_nothing_new_returns_the_refs_of_the_assets_present(quick_ingests, run_dag, tmp_path):
    batch, _ = make_delivery(tmp_path, "night", files=30)
    conf = {"source": str(batch), "parent": MAPS_FOLDER}
    start = _requests(quick_ingests)
    first = _report(run_dag("ingest_dags.py", "ingest_polling_dag", run_conf=conf))
    before = _requests(quick_ingests)
    first_run = {k: before[k] - start.get(k, 0) for k in before if before[k] != start.get(k, 0)}

    second = _report(run_dag("ingest_dags.py", "ingest_polling_dag", run_conf=conf))

    after = _requests(quick_ingests)
    used = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    assert second["state"] == "NOTHING_TO_INGEST" and second["created_refs"] == []
    assert second["skipped_existing"] == 30 and second["refs_truncated"] is True
    assert second["existing_refs"] == sorted(first["created_refs"])[:20]
    assert len(json.dumps(second)) < 2500  # at most 20 refs of each kind, whatever the delivery's size
    # the skip check reads pages, not files: one search for 30 SourceIDs, no per-file lookup or fixity read;
    # the first run finds what it created through the Process Monitor, not a lookup per file either
    assert not any("by-identifier" in k for k in first_run), first_run
    assert not any("by-identifier" in k or "bitstreams" in k for k in used), used
    assert sum(n for k, n in used.items() if "/api/content/search" in k) == 1, used


RUNNER = textwrap.dedent(
    """
    import importlib.util, json, sys
    import pendulum
    spec = importlib.util.spec_from_file_location("ingest_identity_dags", sys.argv[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run = module.start_line_dag.test(logical_date=pendulum.parse(sys.argv[2]), run_conf=json.loads(sys.argv[3]))
    report = run.get_task_instance("ingest").xcom_pull(task_ids="ingest")
    print("REPORT", json.dumps(report))
    """
)


@pytest.mark.multiprocess
def test_two_runs_ingesting_the_same_files_at_once_store_them_once(quick_ingests, airflow_db, tmp_path):
    """Two task processes start the same ingest into one folder within milliseconds of one another."""
    batch, _ = make_delivery(tmp_path, "same", files=5)
    go = tmp_path / "go"
    env = dict(os.environ, AIRFLOW_CONN_PRESERVICA_DEFAULT=connection_json(quick_ingests), PRESERVICA_GO_FILE=str(go))
    conf = json.dumps({"source": str(batch), "parent": MAPS_FOLDER})
    sync_test_dags()
    workers = []
    for index in range(2):
        ready = tmp_path / f"ready-{index}"
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                RUNNER,
                str(REPO / "tests" / "dags" / "ingest_identity_dags.py"),
                f"2026-05-0{index + 1}T00:00:00+00:00",
                conf,
            ],
            env=dict(env, PRESERVICA_READY_FILE=str(ready)),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        workers.append((ready, process))
    deadline = time.time() + 180
    while not all(ready.exists() for ready, _ in workers):  # a condition, not a margin: both at the line
        assert time.time() < deadline and all(p.poll() is None for _, p in workers), "a run did not start"
        time.sleep(0.05)
    go.touch()
    outputs = [process.communicate(timeout=300)[0] for _, process in workers]
    with SESSION_LOG.open("a", encoding="utf-8") as log:
        log.writelines(outputs)

    reports = [json.loads(out.split("REPORT ", 1)[1].splitlines()[0]) for out in outputs if "REPORT " in out]
    assert len(reports) == 2, outputs[0][-3000:]
    assets = _assets_titled()
    assert len(assets) == 5  # stored once
    created = [r for r in reports if r["created_count"]]
    present = [r for r in reports if not r["created_count"]]
    assert len(created) == 1 and len(present) == 1, reports
    assert sorted(created[0]["created_refs"]) == sorted(h.reference for h in assets)
    assert created[0]["verified"] == 5
    assert present[0]["state"] == "NOTHING_TO_INGEST"
    assert present[0]["existing_refs"] == sorted(h.reference for h in assets)


@pytest.mark.parametrize("dag", ["ingest_polling_dag", "ingest_deferrable_dag"])
def test_no_claim_is_left_behind_after_success_or_conflict(quick_ingests, run_dag, tmp_path, dag):
    from airflow_provider_preservica.ingest.claims import claim_key
    from tests.support.airflow_db import variable

    x, _ = make_delivery(tmp_path / "x", "x")
    y, _ = make_delivery(tmp_path / "y", "y")
    key = claim_key(PreservicaHook().settings.base_url, MAPS_FOLDER, "batch")

    done = run_dag("ingest_dags.py", dag, run_conf={"source": str(x), "parent": MAPS_FOLDER})
    assert task_states(done) == {"ingest[-1]": "success"} and variable(key) is None
    refused = run_dag("ingest_dags.py", dag, run_conf={"source": str(y), "parent": MAPS_FOLDER})
    assert task_states(refused) == {"ingest[-1]": "failed"} and variable(key) is None


def test_assets_ingested_without_a_content_identifier_are_compared_by_their_stored_fixity(
    quick_ingests, run_dag, tmp_path
):
    """Assets from before this release (no ``SourceFixity`` identifier) are still skipped, or a conflict."""
    from airflow_provider_preservica.ingest.identity import FIXITY_IDENTIFIER

    x, _ = make_delivery(tmp_path / "x", "x", files=2)
    conf = {"source": str(x), "parent": MAPS_FOLDER}
    first = _report(run_dag("ingest_dags.py", "ingest_polling_dag", run_conf=conf))
    entities = PreservicaHook().entities
    for ref in first["created_refs"]:
        for identifier in entities.identifiers(ref, "IO"):
            if identifier.type == FIXITY_IDENTIFIER:
                entities.delete_identifier(ref, "IO", identifier.api_id)

    same = _report(run_dag("ingest_dags.py", "ingest_polling_dag", run_conf=conf))
    (x / "f1.bin").write_bytes(b"changed since" * 10)
    changed = run_dag("ingest_dags.py", "ingest_polling_dag", run_conf=conf)

    assert same["state"] == "NOTHING_TO_INGEST" and same["existing_refs"] == sorted(first["created_refs"])
    assert task_states(changed) == {"ingest[-1]": "failed"}
