"""Deferrable ingest and export wait in the real triggerer and leave every worker slot free meanwhile."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.distributed.dags.preservica_distributed import SLOTS
from tests.support.deployment import WORKERS, Deployment
from tests.support.distributed import asset_title_counts, make_batch
from tests.support.sandbox import MAPS_FOLDER

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(600)]

DAG_ID = "preservica_fill_slots_while_deferred"
LETTERS_FOLDER = "a0000000-0000-4000-8000-000000000003"


def _snapshot(dist: Deployment, run_id: str) -> dict[str, object]:
    """States of the run's tasks, and whether the triggerer holds the triggers of the deferred ones."""
    rows = dist.query(
        "SELECT ti.task_id, ti.state, t.triggerer_id FROM task_instance ti LEFT JOIN trigger t ON t.id = ti.trigger_id "
        "WHERE ti.dag_id = %s AND ti.run_id = %s",
        (DAG_ID, run_id),
    )
    states = {task: state for task, state, _ in rows if task != "hold_a_slot"}
    return {
        "ingest": states.get("ingest"),
        "export": states.get("export"),
        "in_triggerer": sum(1 for _, state, triggerer in rows if state == "deferred" and triggerer is not None),
        "holding": sum(1 for task, state, _ in rows if task == "hold_a_slot" and state == "running"),
    }


def test_deferred_ingest_and_export_free_every_worker_slot(
    dist: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist.sandbox("POST", "config", {"ingest_seconds": 40, "export_seconds": 40})
    names = make_batch(tmp_path, "deferred-scan", files=3)
    conf = {
        "source": str(tmp_path / "deferred-scan"),
        "parent": MAPS_FOLDER,
        "export_ref": LETTERS_FOLDER,
        "export_to": str(tmp_path / "letters.zip"),
        "barrier": str(tmp_path / "barrier"),
    }

    run_id = dist.trigger(DAG_ID, conf)
    full_house = 0  # polls that saw ingest and export deferred while every worker slot held a slot holder
    both_in_triggerer = 0  # polls that saw both triggers assigned to the triggerer (it may lag under load)
    while dist.run_state(DAG_ID, run_id) not in ("success", "failed"):
        snapshot = _snapshot(dist, run_id)
        deferred = snapshot["ingest"] == snapshot["export"] == "deferred"
        full_house += deferred and snapshot["holding"] == SLOTS
        both_in_triggerer += deferred and snapshot["in_triggerer"] == 2
        time.sleep(0.5)

    tis = dist.task_instances(DAG_ID, run_id)
    assert dist.run_state(DAG_ID, run_id) == "success", [(t["task_id"], t["map_index"], t["state"]) for t in tis]
    print(
        f"\ndeferrable: {full_house} polls saw ingest and export deferred while all {SLOTS} worker slots ran "
        f"slot holders; {both_in_triggerer} polls saw both triggers running in the triggerer"
    )
    # All 2 x 8 worker slots ran slot holders at once while ingest and export were deferred ...
    assert full_house > 0
    # ... and the triggerer, not a worker, watched their progress tokens until Preservica finished.
    for task_id, what in (("ingest", "ingest"), ("export", "export")):
        token = dist.xcom(DAG_ID, run_id, task_id, key="progress_token")
        trigger_log = dist.trigger_log(DAG_ID, run_id, task_id)
        assert f"Preservica {what} {token}: COMPLETED" in trigger_log and "Trigger fired event" in trigger_log
    holders = [dist.xcom(DAG_ID, run_id, "hold_a_slot", map_index=i)["host"] for i in range(SLOTS)]
    assert sorted(holders) == sorted(WORKERS * (SLOTS // len(WORKERS)))

    report = dist.xcom(DAG_ID, run_id, "ingest")
    assert report["state"] == "COMPLETED" and report["created_count"] == 3 and report["verified"] == 3
    assert asset_title_counts(dist, "deferred-scan", monkeypatch) == dict.fromkeys(names, 1)
    export = dist.xcom(DAG_ID, run_id, "export")
    assert export["path"] == conf["export_to"] and Path(export["path"]).stat().st_size == export["bytes"] > 0
    assert export["fixities_checked"] >= 1
