"""pyPreservica 4.2.2, unchanged, deleting with a second (manager) account and running workflow contexts
against the sandbox: the two-step deletion, who may approve it, and the WorkflowAPI calls."""

from __future__ import annotations

import time
from pathlib import Path

import pyPreservica
import pytest
import requests
from preservica_sandbox import SandboxServer
from preservica_sandbox.repository import Repository

from tests.support.repository_tree import Tree, build_tree

from .conftest import ARCHIVIST, CLERK, MANAGER, login, stats


def _kwargs(server: SandboxServer, user: tuple[str, str, str] = ARCHIVIST) -> dict[str, str]:
    return {"username": user[0], "password": user[1], "server": server.server, "protocol": "http"}


def _credentials(tmp_path: Path, manager: tuple[str, str, str]) -> str:
    path = tmp_path / "credentials.properties"
    path.write_text(f"[credentials]\nmanager.username={manager[0]}\nmanager.password={manager[1]}\n")
    return str(path)


@pytest.fixture
def tree(repository: Repository) -> Tree:
    return build_tree(repository)


def _deletions(server: SandboxServer) -> list[dict]:
    return list(requests.get(f"{server.base_url}/_sandbox/deletions", timeout=10).json())


def test_delete_asset_with_a_manager_approval(sandbox: SandboxServer, tree: Tree, tmp_path: Path) -> None:
    entity = pyPreservica.EntityAPI(**_kwargs(sandbox))
    asset = entity.asset(tree.ada)
    assert entity.delete_asset(asset, "weeded", "agreed", _credentials(tmp_path, MANAGER)) == tree.ada
    assert sandbox.state.repository.get(tree.ada) is None
    assert sandbox.state.repository.get(tree.bath) is not None  # its sibling stays
    [record] = _deletions(sandbox)
    assert (record["user"], record["approver"], record["status"]) == ("archivist", MANAGER[0], "COMPLETED")
    assert (record["comment"], record["approval_comment"]) == ("weeded", "agreed")
    requests_seen = stats(sandbox.base_url)["requests"]
    assert sum(n for route, n in requests_seen.items() if route.startswith("DELETE /api/entity/")) == 1, requests_seen


def test_delete_folder_takes_everything_below(sandbox: SandboxServer, tree: Tree, tmp_path: Path) -> None:
    entity = pyPreservica.EntityAPI(**_kwargs(sandbox))
    entity.delete_folder(entity.folder(tree.series_one), "gone", "ok", _credentials(tmp_path, MANAGER))
    repo = sandbox.state.repository
    assert [repo.get(r) for r in (tree.series_one, tree.ada, tree.bath)] == [None, None, None]
    assert repo.get(tree.series_two) is not None


def test_the_requester_cannot_approve_their_own_deletion(sandbox: SandboxServer, tree: Tree, tmp_path: Path) -> None:
    entity = pyPreservica.EntityAPI(**_kwargs(sandbox))
    with pytest.raises(RuntimeError, match="during approval"):
        entity.delete_asset(entity.asset(tree.ada), "x", "y", _credentials(tmp_path, ARCHIVIST))
    assert sandbox.state.repository.get(tree.ada) is not None
    assert [d["status"] for d in _deletions(sandbox)] == ["PENDING"]


def test_an_approver_without_the_manager_role_is_refused(sandbox: SandboxServer, tree: Tree, tmp_path: Path) -> None:
    entity = pyPreservica.EntityAPI(**_kwargs(sandbox))
    with pytest.raises(RuntimeError, match="during approval"):
        entity.delete_asset(entity.asset(tree.ada), "x", "y", _credentials(tmp_path, CLERK))
    assert sandbox.state.repository.get(tree.ada) is not None


def test_a_rejected_deletion_deletes_nothing(sandbox: SandboxServer, tree: Tree) -> None:
    token = login(sandbox.base_url).json()["token"]
    manager = login(sandbox.base_url, MANAGER[0], MANAGER[1]).json()["token"]
    body = '<DeletionAction xmlns="http://preservica.com/EntityAPI/v7.7"><Submission><Comment>c</Comment></Submission></DeletionAction>'
    response = requests.delete(
        f"{sandbox.base_url}/api/entity/information-objects/{tree.ada}",
        data=body,
        headers={"Preservica-Access-Token": token},
        timeout=10,
    )
    assert response.status_code == 202
    progress = response.text
    reject = "<DeletionAction><Approval><Approved>false</Approved><Comment>no</Comment></Approval></DeletionAction>"
    url = f"{sandbox.base_url}/api/entity/actions/deletions/{progress}"
    assert requests.put(url, data=reject, headers={"Preservica-Access-Token": manager}, timeout=10).status_code == 202
    assert sandbox.state.repository.get(tree.ada) is not None
    assert requests.put(url, data=reject, headers={"Preservica-Access-Token": manager}, timeout=10).status_code == 409


def test_no_deletion_workflow_is_a_422(sandbox: SandboxServer, tree: Tree, tmp_path: Path) -> None:
    sandbox.state.update_config({"deletion_workflow": False})
    try:
        entity = pyPreservica.EntityAPI(**_kwargs(sandbox))
        with pytest.raises(RuntimeError, match="no active workflow context"):
            entity.delete_asset(entity.asset(tree.ada), "x", "y", _credentials(tmp_path, MANAGER))
    finally:
        sandbox.state.update_config({"deletion_workflow": True})


def test_workflow_api_contexts_start_and_state(sandbox: SandboxServer) -> None:
    workflow = pyPreservica.WorkflowAPI(**_kwargs(sandbox))
    assert "Ingest OPEX (Incremental)" in {c.workflow_name for c in workflow.get_workflow_contexts_by_type("Ingest")}
    [context] = workflow.get_workflow_contexts_by_type("Access")
    assert workflow.start_workflow_instance(context, note="from a test")
    found = [i for state in ("Pending", "Active", "Completed") for i in workflow.workflow_instances(state, "Access")]
    [instance] = found
    assert instance.workflow_context_name == context.workflow_name
    # workflow_instance(id) of pyPreservica 4.2.2 crashes on any started instance (its ``datetime`` name is
    # shadowed by common.py's ``from datetime import datetime``), so the state is read from the listing.
    deadline = time.monotonic() + 30
    while not [i for i in workflow.workflow_instances("Completed", "Access") if i.instance_id == instance.instance_id]:
        assert time.monotonic() < deadline, "the Access workflow never completed"
        time.sleep(0.05)
