"""A deferred corrections sheet of thousands of rows: the XCom stays small, the rows' state waits in a file.

Before, ``execute`` pushed every row's outcome and every progress token to the XCom before deferring (about
100 bytes a row: 10 MB for 100,000 rows, in the Airflow database). The trigger is run for real here (its
``run()``, as the triggerer would), and ``execute_complete`` resumes from what the XCom and the file hold.
"""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROWS = 5000
TAG_EVERY = 250  # every 250th row also changes its security tag: background work to wait for


class _TaskInstance:
    """What a deferred operator reads back: its own XComs."""

    dag_id, task_id, run_id, map_index = "corrections", "corrections", "manual__2026-12-07", -1

    def __init__(self) -> None:
        self.xcoms: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.xcoms[key] = value

    def xcom_pull(self, task_ids: str, key: str) -> object:
        return self.xcoms.get(key)


@pytest.fixture
def assets(preservica_conn):
    preservica_conn.state.repository.seed(assets=ROWS, random_seed=5)
    refs = sorted(e.ref for e in preservica_conn.state.repository.entities(("IO",)))
    assert len(refs) >= ROWS
    return preservica_conn, refs[:ROWS]


def _sheet(path: Path, server, refs: list[str]) -> list[dict[str, str]]:
    rows = []
    for i, ref in enumerate(refs):
        tag = server.state.repository.get(ref).security_tag
        rows.append(
            {
                "reference": ref,
                "title": f"Corrected {i:05d}",
                "security_tag": ("closed" if tag != "closed" else "open") if i % TAG_EVERY == 0 else "",
            }
        )
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


def _deferred(tmp_path: Path, sheet: Path, state_dir: Path):
    from airflow.exceptions import TaskDeferred

    from airflow_provider_preservica.operators.metadata import PreservicaMetadataOperator

    operator = PreservicaMetadataOperator(
        task_id="corrections", source=str(sheet), deferrable=True, poll_interval=0.1, state_dir=str(state_dir)
    )
    ti = _TaskInstance()
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({"ti": ti})
    return operator, ti, deferred.value.trigger


async def _first_event(trigger) -> dict:
    async for event in trigger.run():
        return event.payload
    raise AssertionError("the trigger ended without an event")


@pytest.mark.parametrize("same_worker", [True, False], ids=["resumed-here", "resumed-on-another-worker"])
def test_a_deferred_sheet_of_thousands_of_rows_keeps_its_xcoms_small_and_applies_every_row(
    assets, tmp_path, same_worker
):
    from airflow_provider_preservica.compat import AirflowException
    from airflow_provider_preservica.operators.metadata import RUN_STATE_KEY

    server, refs = assets
    sheet = tmp_path / "corrections.csv"
    rows = _sheet(sheet, server, refs)
    state_dir = tmp_path / "state"
    state_dir.mkdir()

    operator, ti, trigger = _deferred(tmp_path, sheet, state_dir)

    assert all(len(json.dumps(value)) < 10_000 for value in ti.xcoms.values()), {
        k: len(json.dumps(v)) for k, v in ti.xcoms.items()
    }
    state = ti.xcoms[RUN_STATE_KEY]
    assert state["rows"] == ROWS and state["pending_count"] == ROWS // TAG_EVERY
    assert len(list(state_dir.iterdir())) == 1  # every row's outcome waits in one file
    event = asyncio.run(_first_event(trigger))
    assert event["status"] == "finished"
    if not same_worker:  # the triggerer resumed the task on a worker without that folder
        for spilled in state_dir.iterdir():
            spilled.unlink()
        with pytest.raises(AirflowException, match=r"per-row state of this deferred run \(5000 rows\) cannot be read"):
            operator.execute_complete({"ti": ti}, event)
        return

    result = operator.execute_complete({"ti": ti}, event)

    assert result["changed"] == ROWS and result["rows"] == ROWS and result["pending"] == 0
    assert len(json.dumps(result)) < 10_000
    with (tmp_path / "corrections.report.csv").open(newline="", encoding="utf-8") as handle:
        report = list(csv.DictReader(handle))
    assert [r["outcome"] for r in report] == ["changed"] * ROWS
    for row in rows[:: TAG_EVERY // 2]:
        entity = server.state.repository.get(row["reference"])
        assert entity.title == row["title"] and entity.security_tag == (row["security_tag"] or entity.security_tag)
    assert list(state_dir.iterdir()) == []  # the state file is gone once the outcome is known


def test_a_small_deferred_sheet_keeps_its_state_in_the_xcom(assets, tmp_path):
    from airflow_provider_preservica.operators.metadata import RUN_STATE_KEY

    server, refs = assets
    sheet = tmp_path / "corrections.csv"
    _sheet(sheet, server, refs[: TAG_EVERY + 1 : TAG_EVERY])  # 2 rows, both changing their tag
    state_dir = tmp_path / "state"
    state_dir.mkdir()

    operator, ti, trigger = _deferred(tmp_path, sheet, state_dir)

    assert "outcomes" in ti.xcoms[RUN_STATE_KEY] and list(state_dir.iterdir()) == []
    result = operator.execute_complete({"ti": ti}, asyncio.run(_first_event(trigger)))
    assert result["changed"] == 2
