"""``example_dags/preservica_export_on_change.py`` in real Airflow (``dag.test()``) against the sandbox: a manual
run over a window exports exactly the assets of collection X that changed in it, and running it again
exports nothing (an asset exported after the window closed already holds its changes)."""

from __future__ import annotations

import zipfile
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_preservica.client.changes import format_instant
from airflow_provider_preservica.hooks.preservica import PreservicaHook
from tests.support.example_dags import run_example, states

pytestmark = pytest.mark.integration

COLLECTION_X = "00000000-0000-4000-8000-00000000c011"  # the example's default PRESERVICA_WATCH_COLLECTION


def test_manual_window_exports_the_changed_assets_of_the_collection_once(
    examples: Any,
    preservica_conn: Any,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    preservica_conn.state.update_config({"export_seconds": 0.2})
    repo = preservica_conn.state.repository
    repo.clear()
    made = datetime.now(timezone.utc) - timedelta(minutes=1)
    real_clock, repo.clock = repo.clock, lambda: made.timestamp()  # the collection exists since a minute ago
    try:
        x = repo.add_folder("Collection X", ref=COLLECTION_X)
        series = repo.add_folder("Series", parent=x.ref)
        a = repo.add_asset("a", series.ref)
        repo.add_asset("b", x.ref)  # unchanged: never exported
        y = repo.add_folder("Collection Y")
        c = repo.add_asset("c", y.ref)
    finally:
        repo.clock = real_clock

    since = made + timedelta(seconds=30)
    hook = PreservicaHook()
    for ref, title in ((a.ref, "a, retitled"), (c.ref, "c, outside X")):
        hook.entities.update_text(hook.entities.get(ref, "IO"), title=title)
    until = datetime.now(timezone.utc) + timedelta(milliseconds=1)

    export_dir = tmp_path / "exports"
    monkeypatch.setenv("AIRFLOW_VAR_PRESERVICA_EXPORT_DIR", str(export_dir))
    window = {"since": format_instant(since), "until": format_instant(until)}
    dag_run = run_example(examples, "preservica_export_on_change", run_conf=window)
    assert states(dag_run) == {"plan": "success", "export[0]": "success"}  # one asset to export
    exported = sorted(p.name for p in (export_dir / "changes").iterdir())
    assert exported == [f"{a.ref}.zip"]  # not b (unchanged), not c (another collection)
    with zipfile.ZipFile(export_dir / "changes" / f"{a.ref}.zip") as zipped:
        assert any(name.endswith(".pax.zip") for name in zipped.namelist())

    again = run_example(examples, "preservica_export_on_change", run_conf=window)  # a redelivered window
    assert states(again) == {"plan": "skipped", "export": "skipped"}
    assert sorted(p.name for p in (export_dir / "changes").iterdir()) == exported


def test_changes_operator_reports_its_window_and_refuses_one_still_being_written(preservica_conn: Any) -> None:
    from airflow_provider_preservica.compat import AirflowException
    from airflow_provider_preservica.operators.changes import PreservicaChangesOperator

    repo = preservica_conn.state.repository
    repo.clear()
    made = datetime.now(timezone.utc) - timedelta(minutes=1)
    real_clock, repo.clock = repo.clock, lambda: made.timestamp()  # everything below changed a minute ago
    try:
        x = repo.add_folder("Collection X")
        a = repo.add_asset("a", x.ref)
        other = repo.add_asset("elsewhere", repo.add_folder("Y").ref)
    finally:
        repo.clock = real_clock
    since, until = made - timedelta(minutes=1), made + timedelta(seconds=30)

    def operator(**kwargs: Any) -> PreservicaChangesOperator:
        return PreservicaChangesOperator(task_id="changes", collection=x.ref, since=since, **kwargs)

    soon = datetime.now(timezone.utc) + timedelta(minutes=1)
    with pytest.raises(AirflowException, match="not yet 5 s in the past"):
        operator(until=soon).execute({})  # a window not yet closed: the server may still write into it
    result = operator(until=until, entity_types=["IO"]).execute({})
    assert result["refs"] == [a.ref] and other.ref not in result["refs"]
    assert result["since"] == format_instant(since) and result["count"] == 1
