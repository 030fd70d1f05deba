"""What a finished run leaves in Airflow: no in-flight record of ours, only the shared token cache.

Each operator's deferred path (and the deferrable sensor's) runs in real Airflow (``dag.test()``); the
Variables are then listed straight from the metadata DB. A re-run of a task that succeeded makes a new
export; a retry of a try that failed half way adopts that try's export.
"""

from __future__ import annotations

import pendulum
import pytest

from airflow_provider_preservica.connection.settings import TOKEN_VARIABLE_PREFIX
from airflow_provider_preservica.exceptions import PreservicaConnectionError
from tests.support.airflow_db import task_states
from tests.support.operators import make_batch, sheet_for
from tests.support.sandbox import MAPS_FOLDER, inject

pytestmark = pytest.mark.integration


def our_variables() -> list[str]:
    from airflow.models import Variable
    from airflow.utils.session import create_session

    with create_session() as session:
        return sorted(key for (key,) in session.query(Variable.key) if key.startswith("preservica_"))


def forget_our_variables() -> None:
    from airflow.models import Variable

    for key in our_variables():
        Variable.delete(key)


def export_requests(server) -> int:
    requests = server.state.stats()["requests"]
    return sum(n for k, n in requests.items() if k.startswith("POST ") and k.endswith("/exports"))


@pytest.fixture
def quick(small_repository):
    small_repository.state.update_config({"export_seconds": 0.5, "ingest_seconds": 0.5, "entity_action_seconds": 0.3})
    forget_our_variables()
    return small_repository


def _leaves_only_the_token_cache(dag_run, tasks) -> None:
    assert task_states(dag_run) == {f"{task}[-1]": "success" for task in tasks}
    left = our_variables()
    assert left and all(key.startswith(TOKEN_VARIABLE_PREFIX) for key in left), left


def test_a_deferred_export_leaves_only_the_token_cache(quick, run_dag, tmp_path):
    dag_run = run_dag(
        "export_dags.py", "export_deferrable_dag", run_conf={"out": str(tmp_path / "maps.zip"), "ref": MAPS_FOLDER}
    )
    _leaves_only_the_token_cache(dag_run, ["export"])


def test_a_deferred_ingest_leaves_only_the_token_cache(quick, run_dag, tmp_path):
    batch, _ = make_batch(tmp_path)
    dag_run = run_dag("ingest_dags.py", "ingest_deferrable_dag", run_conf={"source": str(batch), "parent": MAPS_FOLDER})
    _leaves_only_the_token_cache(dag_run, ["ingest"])


def test_an_ingest_handed_to_a_deferred_sensor_leaves_one_claim_per_target_not_per_run(quick, run_dag, tmp_path):
    """``wait_for_completion=False``: the target's claim outlives the task (it names the handed-off progress
    token, so that a concurrent run waits for that ingest instead of duplicating it). The next run of the
    target breaks it once that ingest has finished: one claim per target, never one per run."""
    import json

    from airflow.models import Variable

    from airflow_provider_preservica.ingest.claims import PREFIX as CLAIM_PREFIX

    tokens = []
    for day in (1, 2):
        batch, _ = make_batch(tmp_path / f"night-{day}")  # one namespace, new files each night
        (batch / f"night-{day}.txt").write_text(f"night {day}")
        conf = {"source": str(batch), "parent": MAPS_FOLDER}
        when = pendulum.datetime(2026, 11, day, tz="UTC")
        dag_run = run_dag("ingest_dags.py", "ingest_then_sensor_dag", logical_date=when, run_after=when, run_conf=conf)
        assert task_states(dag_run) == {"ingest[-1]": "success", "wait[-1]": "success"}
        tokens.append(dag_run.get_task_instance("ingest").xcom_pull(task_ids="ingest", key="progress_token"))
        claims = [key for key in our_variables() if key.startswith(CLAIM_PREFIX)]
        others = [k for k in our_variables() if not k.startswith((TOKEN_VARIABLE_PREFIX, CLAIM_PREFIX))]
        assert len(claims) == 1 and not others, our_variables()
        assert json.loads(Variable.get(claims[0]))["progress_token"] == tokens[-1]


def test_a_deferred_metadata_run_leaves_only_the_token_cache(quick, run_dag, tmp_path):
    quick.state.repository.seed(assets=8, random_seed=3)
    repo = quick.state.repository
    assets = sorted(repo.entities(("IO",)), key=lambda e: e.ref)[:4]
    folders = [f for f in repo.entities(("SO",)) if f.parent is not None]
    sheet, _ = sheet_for(tmp_path, assets, folders)
    dag_run = run_dag("metadata_dags.py", "metadata_deferrable_dag", run_conf={"sheet": str(sheet)})
    _leaves_only_the_token_cache(dag_run, ["corrections"])


def test_running_a_deferred_export_again_after_success_makes_a_new_export(quick, run_dag, tmp_path):
    day = pendulum.datetime(2026, 11, 25, tz="UTC")  # the same run id: dag.test() clears that run and runs it again
    first, second = tmp_path / "first.zip", tmp_path / "second.zip"
    same_run = {"logical_date": day, "run_after": day}
    run_dag("export_dags.py", "export_deferrable_dag", **same_run, run_conf={"out": str(first), "ref": MAPS_FOLDER})
    dag_run = run_dag(
        "export_dags.py", "export_deferrable_dag", **same_run, run_conf={"out": str(second), "ref": MAPS_FOLDER}
    )

    assert task_states(dag_run) == {"export[-1]": "success"}
    assert export_requests(quick) == 2
    first_token = dag_run.get_task_instance("export").xcom_pull(task_ids="export")["progress_token"]
    assert first.exists() and second.exists() and first_token


class TaskInstance:
    """What the operator reads of its task instance; ``max_tries`` grows by ``retries + 1`` when it is cleared."""

    dag_id, task_id, run_id, map_index = "nightly_export", "export", "scheduled__2026-11-25", -1

    def __init__(self, max_tries: int) -> None:
        self.max_tries = max_tries
        self.xcoms: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.xcoms[key] = value


def _export(tmp_path, ti: TaskInstance):
    from airflow_provider_preservica.operators.export import PreservicaExportOperator

    operator = PreservicaExportOperator(
        task_id="export",
        entity_ref=MAPS_FOLDER,
        destination=str(tmp_path / "maps.zip"),
        min_free_bytes=0,
        poll_interval=0.1,
        deferrable=False,
        retries=2,
    )
    return operator.execute({"ti": ti})


def _a_try_that_fails_after_the_export_finished(server, tmp_path, ti: TaskInstance) -> None:
    """The export completes; its download breaks off more often than it may resume: the try fails (retryably)."""
    inject(server, kind="drop_after_bytes", route="GET /api/entity/actions/exports/*/content", bytes=100, count=6)
    with pytest.raises(PreservicaConnectionError, match=r"download of .* (broke off|ended at)"):
        _export(tmp_path, ti)


def test_a_retry_adopts_its_finished_export_and_a_cleared_run_starts_a_new_one(quick, tmp_path):
    _a_try_that_fails_after_the_export_finished(quick, tmp_path, TaskInstance(max_tries=2))
    assert export_requests(quick) == 1
    retried = _export(tmp_path, TaskInstance(max_tries=2))  # a retry: the same run of the task instance
    assert export_requests(quick) == 1 and (tmp_path / "maps.zip").stat().st_size == retried["bytes"]

    _a_try_that_fails_after_the_export_finished(quick, tmp_path, TaskInstance(max_tries=2))
    assert export_requests(quick) == 2
    cleared = _export(tmp_path, TaskInstance(max_tries=2 + 3))  # cleared: a new run of it, its own export
    assert export_requests(quick) == 3 and cleared["progress_token"] != retried["progress_token"]
