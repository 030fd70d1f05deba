"""Deletion with a human in the loop, on real Airflow (``dag.test()``, its human-in-the-loop tasks answered
through Airflow's own HITL response handler) against the real sandbox."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests
from preservica_sandbox import SandboxServer

from tests.support.accounts import MANAGER
from tests.support.airflow_db import task_states
from tests.support.hitl import Respondent, needs_hitl_in_dag_test
from tests.support.sandbox import MAPS_FOLDER, connection_json, inject

ESTATE_FOLDER = "a0000000-0000-4000-8000-000000000002"
HAM_PLAN = "c0000000-0000-4000-8000-000000000001"
MAPS_ASSETS = ["b0000000-0000-4000-8000-000000000001", "b0000000-0000-4000-8000-000000000002"]
LETTERS = "a0000000-0000-4000-8000-000000000003"
LETTER = "d0000000-0000-4000-8000-000000000001"

pytest.importorskip("airflow.providers.standard.operators.hitl", reason="human-in-the-loop needs Airflow 3.1+")


@pytest.fixture
def manager_conn(small_repository: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> SandboxServer:
    """``preservica_manager``: the second account, with the manager role (no transport retries: a fault hits once)."""
    monkeypatch.setenv("AIRFLOW_CONN_PRESERVICA_MANAGER", connection_json(small_repository, MANAGER, max_retries=0))
    return small_repository


def run_with_answer(run_dag: Any, option: str, refs: str, dag: str = "delete_dag") -> Any:
    dag_id = {"delete_dag": "preservica_delete_with_approval", "deferred_delete_dag": "preservica_delete_deferred"}
    with Respondent(dag_id[dag], "approve", option) as respondent:
        dag_run = run_dag("deletion_dags.py", dag, run_conf={"refs": refs})
    assert respondent.error is None, respondent.error
    assert respondent.answered.is_set()
    return dag_run


def deletions(server: SandboxServer) -> list[dict[str, Any]]:
    return list(requests.get(f"{server.base_url}/_sandbox/deletions", timeout=10).json())


def delete_requests(server: SandboxServer) -> int:
    return sum(n for route, n in server.state.stats()["requests"].items() if route.startswith("DELETE /api/entity/"))


@needs_hitl_in_dag_test
def test_a_rejected_deletion_deletes_nothing(manager_conn: SandboxServer, run_dag: Any) -> None:
    dag_run = run_with_answer(run_dag, "Reject", ESTATE_FOLDER)
    states = task_states(dag_run)
    assert states["manifest[-1]"] == "success" and states["delete[-1]"] == "skipped", states
    assert manager_conn.state.repository.get(ESTATE_FOLDER) is not None
    assert manager_conn.state.repository.get(HAM_PLAN) is not None
    assert delete_requests(manager_conn) == 0 and deletions(manager_conn) == []


@needs_hitl_in_dag_test
def test_an_approved_deletion_deletes_exactly_the_manifest(manager_conn: SandboxServer, run_dag: Any) -> None:
    repo = manager_conn.state.repository
    before = {e.ref for e in repo.entities()}
    dag_run = run_with_answer(run_dag, "Approve", f"{ESTATE_FOLDER},{LETTER}")
    assert task_states(dag_run)["delete[-1]"] == "success", task_states(dag_run)
    manifest = dag_run.get_task_instance("manifest").xcom_pull(task_ids="manifest")
    result = dag_run.get_task_instance("delete").xcom_pull(task_ids="delete")
    listed = {e["ref"] for e in manifest["entities"]}
    assert listed == {ESTATE_FOLDER, HAM_PLAN, LETTER}
    assert [repo.get(ref) for ref in listed] == [None, None, None]
    for still_there in (MAPS_FOLDER, LETTERS, *MAPS_ASSETS):
        assert repo.get(still_there) is not None
    assert before - {e.ref for e in repo.entities()} == listed  # and nothing else went
    assert {d["ref"] for d in result["deleted"]} == {ESTATE_FOLDER, LETTER}
    assert (result["folders"], result["assets"], result["approved_by"]) == (1, 2, "Cora Curator")
    records = deletions(manager_conn)
    assert {(d["ref"], d["user"], d["approver"], d["status"]) for d in records} == {
        (ESTATE_FOLDER, "archivist", MANAGER.name, "COMPLETED"),
        (LETTER, "archivist", MANAGER.name, "COMPLETED"),
    }
    assert all("Cora Curator" in d["approval_comment"] for d in records)


@needs_hitl_in_dag_test
@pytest.mark.parametrize("dag", ["delete_dag", "deferred_delete_dag"])
def test_a_retry_after_a_crash_between_request_and_approval_asks_once(
    manager_conn: SandboxServer, run_dag: Any, dag: str
) -> None:
    inject(manager_conn, kind="status", route="PUT /api/entity/actions/deletions/*", status=503, count=1)
    dag_run = run_with_answer(run_dag, "Approve", LETTER, dag)
    delete_ti = dag_run.get_task_instance("delete")
    assert str(delete_ti.state) == "success" and delete_ti.try_number == 2, (delete_ti.state, delete_ti.try_number)
    assert manager_conn.state.repository.get(LETTER) is None
    assert delete_requests(manager_conn) == 1
    [record] = deletions(manager_conn)
    assert record["status"] == "COMPLETED"
    assert delete_ti.xcom_pull(task_ids="delete")["adopted"] == [LETTER]


class ReleaseWhenDeferred:
    """Holds Preservica's deletions (the sandbox's ``deletion_hold``: approved, still running) until someone has
    read their progress tokens again and again after the approval, then lets them finish. The deferred task reads
    each token once after approving, then defers: further reads come from the trigger. No clock: a condition.
    Whether the task deferred is read from its log ("Pausing task as DEFERRED") by the test."""

    def __init__(self, server: SandboxServer, tokens: int) -> None:
        self.server, self.tokens = server, tokens
        self.released = threading.Event()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ReleaseWhenDeferred:
        self.server.state.update_config({"deletion_hold": True})
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        self.server.state.update_config({"deletion_hold": False})

    def _run(self) -> None:
        try:
            baseline = None
            while not self._stop.is_set():
                held = [d for d in deletions(self.server) if d["status"] == "ACTIVE"]
                if baseline is None and len(held) == self.tokens:
                    baseline = progress_reads(self.server)  # all approved, none finished
                # the worker's one look after approving, then at least one poll of every token by the trigger
                if baseline is not None and progress_reads(self.server) >= baseline + 2 * self.tokens:
                    self.released.set()
                    self.server.state.update_config({"deletion_hold": False})
                    return
                self._stop.wait(0.05)
        except BaseException as exc:  # reported by the test
            self.error = exc


def progress_reads(server: SandboxServer) -> int:
    return sum(
        n for route, n in server.state.stats()["requests"].items() if route.startswith("GET /api/entity/progress")
    )


def deferred_once(capfd: pytest.CaptureFixture[str]) -> bool:
    out = capfd.readouterr()
    return (out.out + out.err).count("Pausing task as DEFERRED") == 1


def check_deleted_exactly(server: SandboxServer, dag_run: Any, before: set[str], listed: set[str]) -> None:
    repo = server.state.repository
    assert task_states(dag_run)["delete[-1]"] == "success", task_states(dag_run)
    manifest = dag_run.get_task_instance("manifest").xcom_pull(task_ids="manifest")
    assert {e["ref"] for e in manifest["entities"]} == listed
    assert before - {e.ref for e in repo.entities()} == listed  # those went, and nothing else
    assert delete_requests(server) == len(manifest["targets"])  # one request per target, never more
    records = deletions(server)
    assert {(d["user"], d["approver"], d["status"]) for d in records} == {("archivist", MANAGER.name, "COMPLETED")}


@needs_hitl_in_dag_test
def test_a_deferred_deletion_waits_in_the_triggerer_and_deletes_exactly_the_manifest(
    manager_conn: SandboxServer, run_dag: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    before = {e.ref for e in manager_conn.state.repository.entities()}
    with ReleaseWhenDeferred(manager_conn, tokens=2) as release:
        dag_run = run_with_answer(run_dag, "Approve", f"{ESTATE_FOLDER},{LETTER}", "deferred_delete_dag")
    assert release.error is None, release.error
    assert release.released.is_set()
    assert deferred_once(capfd)  # the task waited for Preservica's deletion workflow in the triggerer
    check_deleted_exactly(manager_conn, dag_run, before, {ESTATE_FOLDER, HAM_PLAN, LETTER})
    result = dag_run.get_task_instance("delete").xcom_pull(task_ids="delete")
    assert result["approved_by"] == "Cora Curator" and result["requested"] == [ESTATE_FOLDER, LETTER]


def test_a_deferred_deletion_runs_on_every_airflow(
    manager_conn: SandboxServer, run_dag: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    """The deferred deletion on Airflow 3.1 too, where ``dag.test()`` cannot run the approval form: the approval
    task is replaced by the answer a person gave (``recorded_answer_dag``)."""
    before = {e.ref for e in manager_conn.state.repository.entities()}
    with ReleaseWhenDeferred(manager_conn, tokens=1) as release:
        dag_run = run_dag("deletion_dags.py", "recorded_answer_dag", run_conf={"refs": ESTATE_FOLDER})
    assert release.error is None, release.error
    assert release.released.is_set()
    assert deferred_once(capfd)
    check_deleted_exactly(manager_conn, dag_run, before, {ESTATE_FOLDER, HAM_PLAN})


def test_a_deferred_retry_after_a_crash_between_request_and_approval_asks_once_on_every_airflow(
    manager_conn: SandboxServer, run_dag: Any
) -> None:
    """The approval fails once (503, no transport retries): the try fails after the request; the retry takes the
    request over, approves it and completes without asking again. Runs on 3.1 too (``recorded_answer_dag``)."""
    inject(manager_conn, kind="status", route="PUT /api/entity/actions/deletions/*", status=503, count=1)
    dag_run = run_dag("deletion_dags.py", "recorded_answer_dag", run_conf={"refs": LETTER})
    delete_ti = dag_run.get_task_instance("delete")
    assert str(delete_ti.state) == "success" and delete_ti.try_number == 2, (delete_ti.state, delete_ti.try_number)
    assert manager_conn.state.repository.get(LETTER) is None
    assert delete_requests(manager_conn) == 1
    [record] = deletions(manager_conn)
    assert record["status"] == "COMPLETED"
    assert delete_ti.xcom_pull(task_ids="delete")["adopted"] == [LETTER]


class FakeTaskInstance:
    """What the operators read from the context: identity, XComs pushed, and the upstream tasks' XComs."""

    dag_id, task_id, run_id, map_index, max_tries = "weeding", "delete", "manual__1", -1, 0

    def __init__(self, upstream: dict[str, Any] | None = None) -> None:
        self.xcoms: dict[str, object] = {}
        self.upstream = dict(upstream or {})

    def xcom_push(self, key: str, value: object) -> None:
        self.xcoms[key] = value

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        return self.upstream.get(task_ids) if key == "return_value" else None


def make_manifest(refs: str) -> dict[str, Any]:
    from airflow_provider_preservica.operators.deletion import PreservicaDeletionManifestOperator

    ti = FakeTaskInstance()
    manifest = PreservicaDeletionManifestOperator(task_id="manifest", refs=refs).execute({"ti": ti})
    assert "Plan of Ham estate" in str(ti.xcoms["markdown"]) or HAM_PLAN not in refs
    return manifest


def delete_operator() -> Any:
    from airflow_provider_preservica.operators.deletion import PreservicaDeleteOperator

    return PreservicaDeleteOperator(
        task_id="delete",
        manifest_task_id="manifest",
        approval_task_id="approve",
        manager_conn_id="preservica_manager",
        operator_comment="weeding",
        poll_interval=0.05,
    )


APPROVED = {"chosen_options": ["Approve"], "params_input": {}, "responded_by_user": {"id": "cora", "name": "Cora"}}


@pytest.mark.parametrize(
    "answer",
    [None, {"chosen_options": ["Reject"], "params_input": {}}, {"chosen_options": []}, "Approve"],
    ids=["no-answer", "rejected", "empty", "not-an-answer"],
)
def test_the_delete_task_refuses_without_an_approval(manager_conn: SandboxServer, answer: Any) -> None:
    from airflow_provider_preservica.compat import AirflowFailException

    manifest = make_manifest(ESTATE_FOLDER)
    ti = FakeTaskInstance({"manifest": manifest, "approve": answer})
    with pytest.raises(AirflowFailException, match="refusing to delete: task 'approve' recorded no approval"):
        delete_operator().execute({"ti": ti})
    assert manager_conn.state.repository.get(ESTATE_FOLDER) is not None
    assert delete_requests(manager_conn) == 0


def test_a_repository_changed_since_the_approval_is_not_touched(manager_conn: SandboxServer) -> None:
    from airflow_provider_preservica.compat import AirflowFailException

    manifest = make_manifest(f"{ESTATE_FOLDER} {LETTER}")
    repo = manager_conn.state.repository
    added = repo.add_asset("Plan of Ham, second sheet", ESTATE_FOLDER)  # filed after the manifest was approved
    repo.update(LETTER, title="Letter to a map maker (draft)")  # and another retitled
    ti = FakeTaskInstance({"manifest": manifest, "approve": APPROVED})
    with pytest.raises(AirflowFailException) as raised:
        delete_operator().execute({"ti": ti})
    message = str(raised.value)
    assert "nothing was deleted" in message
    assert f"new since the approval: IO {added.ref} 'Plan of Ham, second sheet' in folder {ESTATE_FOLDER}" in message
    assert f"title of {LETTER} changed: 'Letter to a map maker' -> 'Letter to a map maker (draft)'" in message
    assert all(repo.get(ref) is not None for ref in (ESTATE_FOLDER, HAM_PLAN, LETTER, added.ref))
    assert delete_requests(manager_conn) == 0


def test_the_manager_connection_must_be_another_account(manager_conn: SandboxServer, monkeypatch) -> None:
    from airflow_provider_preservica.compat import AirflowFailException

    monkeypatch.setenv("AIRFLOW_CONN_PRESERVICA_MANAGER", connection_json(manager_conn))  # the archivist again
    ti = FakeTaskInstance({"manifest": make_manifest(LETTER), "approve": APPROVED})
    with pytest.raises(AirflowFailException, match="needs a second account, with the manager role"):
        delete_operator().execute({"ti": ti})
    assert delete_requests(manager_conn) == 0


def test_a_manifest_lists_folders_with_their_descendants_once(manager_conn: SandboxServer) -> None:
    manifest = make_manifest(f"{HAM_PLAN},{MAPS_FOLDER}")  # the plan is inside the maps collection
    assert [t["ref"] for t in manifest["targets"]] == [MAPS_FOLDER]
    assert (manifest["folders"], manifest["assets"]) == (2, 4)
    assert len({e["ref"] for e in manifest["entities"]}) == len(manifest["entities"]) == 6
    assert {e["target"] for e in manifest["entities"]} == {MAPS_FOLDER}


def test_a_manifest_adds_up_the_preservation_files(manager_conn: SandboxServer) -> None:
    import io

    repo = manager_conn.state.repository
    repo.add_bitstream_file(LETTER, io.BytesIO(b"x" * 1200), "letter.tif")
    repo.add_bitstream_file(LETTER, io.BytesIO(b"y" * 34), "letter.txt")
    manifest = make_manifest(LETTERS)
    sizes = {e["ref"]: e["bytes"] for e in manifest["entities"]}
    assert sizes == {LETTERS: None, LETTER: 1234} and manifest["bytes"] == 1234
    assert "| IO | `d0000000-0000-4000-8000-000000000001` | Letter to a map maker |" in markdown_of(manifest)


def markdown_of(manifest: dict[str, Any]) -> str:
    from airflow_provider_preservica.deletion.manifest import markdown

    return markdown(manifest)


def test_manifest_requests_grow_with_pages_not_assets(manager_conn: SandboxServer) -> None:
    """Without sizes, a folder of 250 assets costs its three pages of children, not one request per asset."""
    from airflow_provider_preservica.operators.deletion import PreservicaDeletionManifestOperator

    repo = manager_conn.state.repository
    box = repo.add_folder("Box 7", parent=LETTERS)
    for number in range(250):
        repo.add_asset(f"Item {number}", box.ref)
    before = sum(manager_conn.state.stats()["requests"].values())
    operator = PreservicaDeletionManifestOperator(task_id="manifest", refs=LETTERS, include_sizes=False)
    manifest = operator.execute({"ti": FakeTaskInstance()})
    spent = sum(manager_conn.state.stats()["requests"].values()) - before
    assert (manifest["folders"], manifest["assets"]) == (2, 251)
    # login, version, the folder (tried as an asset first), 1 page of Letters' children, 3 pages of the box's
    assert spent == 2 + 2 + 1 + 3, manager_conn.state.stats()["requests"]


def test_a_manifest_of_an_unknown_ref_fails_without_retries(manager_conn: SandboxServer) -> None:
    from airflow_provider_preservica.compat import AirflowFailException
    from airflow_provider_preservica.operators.deletion import PreservicaDeletionManifestOperator

    operator = PreservicaDeletionManifestOperator(task_id="manifest", refs="ffffffff-0000-4000-8000-00000000000f")
    with pytest.raises(AirflowFailException, match=r"no entity with reference 'ffffffff-.*nothing was deleted"):
        operator.execute({"ti": FakeTaskInstance()})
