"""Moves and security tag changes over raw HTTP: refusals, injected and apply-time failures, timing,
configuration, and many actions at once."""

from __future__ import annotations

import signal
import threading
import time
import xml.etree.ElementTree as ET
from typing import Any

import pytest
import requests
from preservica_sandbox import SandboxServer
from preservica_sandbox.repository import Repository

from tests.support.repository_tree import Tree, build_tree

from .conftest import CURATOR, login, post_faults
from .test_server import _start_cli, _stop_cli

STATUS_NS = "{http://status.preservica.com}"
X77 = "{http://preservica.com/XIP/v7.7}"
ASSETS, FOLDERS = "information-objects", "structural-objects"


@pytest.fixture
def tree(repository: Repository) -> Tree:
    return build_tree(repository)


def _config(server: SandboxServer, **values: Any) -> requests.Response:
    return requests.post(f"{server.base_url}/_sandbox/config", json=values, timeout=10)


def _move(server: SandboxServer, auth: dict[str, str], path: str, ref: str, body: str) -> requests.Response:
    url = f"{server.base_url}/api/entity/{path}/{ref}/parent-ref"
    return requests.put(url, data=body, headers={**auth, "Content-Type": "text/plain"}, timeout=10)


def _retag(
    server: SandboxServer, auth: dict[str, str], path: str, ref: str, tag: str, descendants: str = "false"
) -> requests.Response:
    url = f"{server.base_url}/api/entity/{path}/{ref}/security-descriptor?includeDescendants={descendants}"
    return requests.put(url, data=tag, headers={**auth, "Content-Type": "text/plain"}, timeout=10)


def _progress(server: SandboxServer, auth: dict[str, str], token: str) -> ET.Element:
    url = f"{server.base_url}/api/entity/progress/{token}?includeErrors=true"
    response = requests.get(url, headers=auth, timeout=10)
    assert response.status_code == 200, response.text
    return ET.fromstring(response.content)


def _finish(server: SandboxServer, auth: dict[str, str], token: str, timeout: float = 60.0) -> ET.Element:
    deadline = time.monotonic() + timeout
    while (doc := _progress(server, auth, token)).findtext(f"{STATUS_NS}Status") == "ACTIVE":
        assert time.monotonic() < deadline, f"{token} still ACTIVE"
        time.sleep(0.02)
    return doc


def _errors(doc: ET.Element) -> list[str]:
    return [e.text or "" for e in doc.iter(f"{STATUS_NS}Error")]


def _actions(server: SandboxServer) -> list[dict[str, Any]]:
    return list(requests.get(f"{server.base_url}/_sandbox/entity-actions", timeout=10).json())


@pytest.mark.parametrize(
    ("path", "ref", "body", "status", "message"),
    [
        (ASSETS, "ada", "@root@", 400, "cannot be moved to the root"),
        (FOLDERS, "alpha", "series_one", 400, "cannot be moved below itself"),
        (FOLDERS, "alpha", "alpha", 400, "cannot be moved below itself"),
        (ASSETS, "ada", "6f1c2d7e-0000-4000-8000-000000000000", 404, "destination folder 6f1c2d7e-"),
        (ASSETS, "ada", "york", 400, "is an asset, not a folder"),
        (ASSETS, "ada", "not-a-ref", 400, "must be a folder reference or @root@"),
        (ASSETS, "ada", "  ", 400, "destination folder's reference or @root@"),
        (ASSETS, "6f1c2d7e-0000-4000-8000-000000000000", "beta", 404, "no InformationObject"),
        (FOLDERS, "ada", "beta", 404, "no StructuralObject"),
    ],
)
def test_move_refusals(
    sandbox: SandboxServer, tree: Tree, auth: dict[str, str], path: str, ref: str, body: str, status: int, message: str
) -> None:
    names = vars(tree)
    response = _move(sandbox, auth, path, names.get(ref, ref), names.get(body, body))
    assert response.status_code == status, response.text
    assert message in response.json()["message"]
    assert _actions(sandbox) == []  # nothing was queued
    assert sandbox.state.repository.require(tree.ada).parent == tree.series_one
    assert sandbox.state.repository.require(tree.alpha).parent is None


def test_content_objects_cannot_be_moved(sandbox: SandboxServer, tree: Tree, auth: dict[str, str]) -> None:
    co = sandbox.state.repository.add_content_object(tree.ada, "page 1")
    response = _move(sandbox, auth, "content-objects", co.ref, tree.beta)
    assert response.status_code == 400
    assert "content object" in response.json()["message"] and "move its asset" in response.json()["message"]


def test_unknown_security_tag_names_it_and_lists_the_known_tags(
    sandbox: SandboxServer, tree: Tree, auth: dict[str, str]
) -> None:
    response = _retag(sandbox, auth, ASSETS, tree.ada, "Restricted")
    assert response.status_code == 400
    body = response.json()
    assert body["message"] == "unknown security tag 'Restricted': the known tags are open, closed, public"
    assert body["known_tags"] == ["open", "closed", "public"]
    assert _retag(sandbox, auth, ASSETS, tree.ada, "closed", descendants="maybe").status_code == 400
    assert _retag(sandbox, auth, ASSETS, tree.ada, "").status_code == 400
    assert _actions(sandbox) == []
    assert sandbox.state.repository.require(tree.ada).security_tag == "open"


def test_state_is_unchanged_until_the_token_completes(sandbox: SandboxServer, tree: Tree, auth: dict[str, str]) -> None:
    assert _config(sandbox, entity_action_seconds=3600).status_code == 200  # held until released below
    move = _move(sandbox, auth, FOLDERS, tree.series_two, tree.beta)
    retag = _retag(sandbox, auth, FOLDERS, tree.alpha, "closed", descendants="true")
    assert (move.status_code, retag.status_code) == (202, 202)
    assert move.headers["content-type"].startswith("text/plain")
    url = f"{sandbox.base_url}/api/entity/{FOLDERS}/{tree.series_two}"
    doc = ET.fromstring(requests.get(url, headers=auth, timeout=10).content)
    assert doc.findtext(f".//{X77}Parent") == tree.alpha
    assert _progress(sandbox, auth, move.text).findtext(f"{STATUS_NS}Status") == "ACTIVE"
    assert sandbox.state.repository.require(tree.bath).security_tag == "closed"  # as built
    assert sandbox.state.repository.require(tree.ada).security_tag == "open"
    assert _progress(sandbox, auth, retag.text).findtext(f"{STATUS_NS}Status") == "ACTIVE"

    assert _config(sandbox, entity_action_seconds=0).status_code == 200  # queued actions fall due now
    assert _finish(sandbox, auth, move.text).findtext(f"{STATUS_NS}Status") == "COMPLETED"
    assert _finish(sandbox, auth, retag.text).findtext(f"{STATUS_NS}Status") == "COMPLETED"
    doc = ET.fromstring(requests.get(url, headers=auth, timeout=10).content)
    assert doc.findtext(f".//{X77}Parent") == tree.beta
    repo = sandbox.state.repository
    below_alpha = {tree.alpha, tree.series_one, tree.ada, tree.bath}  # series two left before the retag
    assert {r for r in below_alpha if repo.require(r).security_tag == "closed"} == below_alpha
    assert repo.require(tree.york).security_tag == "public"


def test_include_descendants_retags_content_objects_too(
    sandbox: SandboxServer, tree: Tree, auth: dict[str, str]
) -> None:
    _config(sandbox, entity_action_seconds=0)
    page = sandbox.state.repository.add_content_object(tree.york, "sheet")
    assert _retag(sandbox, auth, FOLDERS, tree.series_two, "closed").status_code == 202
    assert (sandbox.state.repository.require(tree.york).security_tag, page.security_tag) == ("public", "public")
    response = _retag(sandbox, auth, FOLDERS, tree.series_two, "open", descendants="true")
    assert _finish(sandbox, auth, response.text).findtext(f"{STATUS_NS}Status") == "COMPLETED"
    assert (sandbox.state.repository.require(tree.york).security_tag, page.security_tag) == ("open", "open")
    assert _actions(sandbox)[-1]["changed"] == 3


def test_injected_failure_ends_failed_with_its_message(
    sandbox: SandboxServer, tree: Tree, auth: dict[str, str]
) -> None:
    _config(sandbox, entity_action_seconds=0.5)
    (fault,) = post_faults(
        sandbox.base_url,
        {"kind": "fail_entity_action", "action": "security_tag", "ref": tree.bob, "message": "Tag workflow broke"},
    )
    assert (fault["action"], fault["ref"], fault["count"]) == ("security_tag", tree.bob, 1)
    moved = _move(sandbox, auth, ASSETS, tree.bob, tree.alpha)  # a move: not what the fault names
    other = _retag(sandbox, auth, ASSETS, tree.ada, "closed")  # another ref
    failed = _retag(sandbox, auth, ASSETS, tree.bob, "closed")
    assert (moved.status_code, other.status_code, failed.status_code) == (202, 202, 202)
    assert _progress(sandbox, auth, failed.text).findtext(f"{STATUS_NS}Status") == "ACTIVE"
    doc = _finish(sandbox, auth, failed.text)
    assert (doc.findtext(f"{STATUS_NS}Status"), _errors(doc)) == ("FAILED", ["Tag workflow broke"])
    assert _finish(sandbox, auth, moved.text).findtext(f"{STATUS_NS}Status") == "COMPLETED"
    assert _finish(sandbox, auth, other.text).findtext(f"{STATUS_NS}Status") == "COMPLETED"
    repo = sandbox.state.repository
    assert (repo.require(tree.bob).security_tag, repo.require(tree.bob).parent) == ("open", tree.alpha)
    assert requests.get(f"{sandbox.base_url}/_sandbox/faults", timeout=10).json() == []
    again = _retag(sandbox, auth, ASSETS, tree.bob, "closed")
    assert _finish(sandbox, auth, again.text).findtext(f"{STATUS_NS}Status") == "COMPLETED"


def test_default_fault_message_and_count(sandbox: SandboxServer, tree: Tree, auth: dict[str, str]) -> None:
    _config(sandbox, entity_action_seconds=0)
    post_faults(sandbox.base_url, {"kind": "fail_entity_action", "count": 2})
    first = _move(sandbox, auth, ASSETS, tree.ada, tree.beta)
    second = _retag(sandbox, auth, ASSETS, tree.ada, "closed")
    third = _retag(sandbox, auth, ASSETS, tree.ada, "public")
    assert _errors(_progress(sandbox, auth, first.text)) == ["sandbox fault: the move failed"]
    assert _errors(_progress(sandbox, auth, second.text)) == ["sandbox fault: the security tag change failed"]
    assert _progress(sandbox, auth, third.text).findtext(f"{STATUS_NS}Status") == "COMPLETED"
    assert sandbox.state.repository.require(tree.ada).parent == tree.series_one


@pytest.mark.parametrize(
    "fault", [{"kind": "fail_entity_action", "action": "delete"}, {"kind": "fail_entity_action", "ref": ""}]
)
def test_invalid_entity_action_faults_are_400(sandbox: SandboxServer, fault: dict[str, Any]) -> None:
    response = requests.post(f"{sandbox.base_url}/_sandbox/faults", json=fault, timeout=10)
    assert response.status_code == 400


def test_a_change_that_became_impossible_fails_at_apply_time(
    sandbox: SandboxServer, tree: Tree, auth: dict[str, str]
) -> None:
    _config(sandbox, entity_action_seconds=0.5)
    into_two = _move(sandbox, auth, ASSETS, tree.ada, tree.series_two)
    cycle_later = _move(sandbox, auth, FOLDERS, tree.alpha, tree.beta)
    beta_down = _move(sandbox, auth, FOLDERS, tree.beta, tree.series_one)  # a cycle once alpha is under beta
    assert {r.status_code for r in (into_two, cycle_later, beta_down)} == {202}
    sandbox.state.repository.delete(tree.series_two)
    doc = _finish(sandbox, auth, into_two.text)
    assert doc.findtext(f"{STATUS_NS}Status") == "FAILED"
    assert _errors(doc) == [f"destination folder {tree.series_two} does not exist"]
    assert _finish(sandbox, auth, cycle_later.text).findtext(f"{STATUS_NS}Status") == "COMPLETED"
    doc = _finish(sandbox, auth, beta_down.text)
    assert doc.findtext(f"{STATUS_NS}Status") == "FAILED" and "below itself" in _errors(doc)[0]
    repo = sandbox.state.repository
    assert (repo.require(tree.ada).parent, repo.require(tree.beta).parent) == (tree.series_one, None)


def test_versioned_routes_and_tenant_scoped_tokens(sandbox: SandboxServer, tree: Tree, auth: dict[str, str]) -> None:
    _config(sandbox, entity_action_seconds=0)
    url = f"{sandbox.base_url}/api/entity/v7.7/{ASSETS}/{tree.ada}/parent-ref"
    response = requests.put(url, data=tree.beta, headers=auth, timeout=10)
    assert response.status_code == 202
    url = f"{sandbox.base_url}/api/entity/v7.2/{ASSETS}/{tree.ada}/security-descriptor?includeDescendants=false"
    retag = requests.put(url, data="public", headers=auth, timeout=10)
    assert retag.status_code == 202
    repo = sandbox.state.repository
    assert (repo.require(tree.ada).parent, repo.require(tree.ada).security_tag) == (tree.beta, "public")
    other = {"Preservica-Access-Token": login(sandbox.base_url, CURATOR[0], CURATOR[1]).json()["token"]}
    progress = f"{sandbox.base_url}/api/entity/progress/{response.text}"
    assert requests.get(progress, headers=other, timeout=10).status_code == 404
    assert _move(sandbox, {}, ASSETS, tree.ada, tree.alpha).status_code == 401


def test_security_tags_xml_and_configuration(sandbox: SandboxServer, auth: dict[str, str]) -> None:
    url = f"{sandbox.base_url}/api/security/tags"
    doc = ET.fromstring(requests.get(url, headers=auth, timeout=10).content)
    sec = "{http://preservica.com/SecurityAPI/v7.7}"
    assert [t.get("name") for t in doc.iter(f"{sec}Tag")] == ["open", "closed", "public"]
    assert all(t.findall(f".//{sec}Permission") for t in doc.iter(f"{sec}Tag"))

    assert _config(sandbox, version="6.2.0", security_tags={"open": ["READ"], "staff & friends": []}).ok
    doc = ET.fromstring(requests.get(url, headers=auth, timeout=10).content)
    sec = "{http://preservica.com/SecurityAPI/v6.2}"
    assert [(t.get("name"), [p.text for p in t.iter(f"{sec}Permission")]) for t in doc.iter(f"{sec}Tag")] == [
        ("open", ["READ"]),
        ("staff & friends", []),
    ]
    assert requests.get(url, timeout=10).status_code == 401


@pytest.mark.parametrize(
    "values",
    [
        {"security_tags": []},
        {"security_tags": ["open", "open"]},
        {"security_tags": [" open"]},
        {"security_tags": {"open": "VIEW"}},
        {"security_tags": "open"},
        {"entity_action_seconds": -1},
        {"entity_action_seconds": True},
        {"entity_action_seconds": 5, "security_tags": [3]},
    ],
)
def test_bad_configuration_is_400_and_changes_nothing(sandbox: SandboxServer, values: dict[str, Any]) -> None:
    before = requests.get(f"{sandbox.base_url}/_sandbox/config", timeout=10).json()
    response = _config(sandbox, **values)
    assert response.status_code == 400, response.text
    assert requests.get(f"{sandbox.base_url}/_sandbox/config", timeout=10).json() == before


def test_reset_forgets_queued_actions(sandbox: SandboxServer, tree: Tree, auth: dict[str, str]) -> None:
    _config(sandbox, entity_action_seconds=0.5)
    assert _move(sandbox, auth, ASSETS, tree.ada, tree.beta).status_code == 202
    requests.post(f"{sandbox.base_url}/_sandbox/reset", timeout=10).raise_for_status()
    time.sleep(0.8)  # past the time it was due
    assert sandbox.state.repository.require(tree.ada).parent == tree.series_one
    assert _actions(sandbox) == []


def test_hundreds_of_concurrent_actions_share_one_worker(
    sandbox: SandboxServer, repository: Repository, auth: dict[str, str]
) -> None:
    _config(sandbox, entity_action_seconds=3600)  # nothing completes while the 300 are being queued
    folder = repository.add_folder("Bulk")
    assets = [repository.add_asset(f"Item {n}", folder.ref).ref for n in range(300)]
    url = f"{sandbox.base_url}/api/entity/{ASSETS}/{{}}/security-descriptor?includeDescendants=false"
    before = [t.name for t in threading.enumerate()].count("sandbox-entity-actions")  # other sandboxes' workers
    with requests.Session() as http:
        http.headers.update(auth)
        responses = [http.put(url.format(ref), data="closed", timeout=10) for ref in assets]
    assert {r.status_code for r in responses} == {202}
    assert [t.name for t in threading.enumerate()].count("sandbox-entity-actions") - before <= 1  # not one per action
    assert sandbox.state.entity_actions.pending() == 300
    assert all(repository.require(ref).security_tag == "open" for ref in assets)

    _config(sandbox, entity_action_seconds=0)  # all 300 fall due at once
    deadline = time.monotonic() + 60
    while any(action.progress.status == "ACTIVE" for action in sandbox.state.entity_actions.actions()):
        assert time.monotonic() < deadline, "actions still ACTIVE"
        time.sleep(0.05)
    statuses = {_progress(sandbox, auth, r.text).findtext(f"{STATUS_NS}Status") for r in responses[::50]}
    assert statuses == {"COMPLETED"}
    assert all(repository.require(ref).security_tag == "closed" for ref in assets)


def test_server_and_cli_options_set_the_tags_and_the_delay() -> None:
    server = SandboxServer(security_tags=["open", "restricted"], entity_action_seconds=0)
    try:
        config = server.state.config()
    finally:
        server.state.close()
    assert (list(config["security_tags"]), config["entity_action_seconds"]) == (["open", "restricted"], 0)
    with pytest.raises(ValueError, match="security_tags"):
        SandboxServer(security_tags=[])

    process, url = _start_cli("--security-tags", "open, embargoed", "--entity-action-seconds", "1.5")
    try:
        assert requests.get(f"{url}/_sandbox/config", timeout=10).json()["entity_action_seconds"] == 1.5
        headers = {"Preservica-Access-Token": login(url).json()["token"]}
        doc = ET.fromstring(requests.get(f"{url}/api/security/tags", headers=headers, timeout=10).content)
        assert [t.get("name") for t in doc.iter("{http://preservica.com/SecurityAPI/v7.7}Tag")] == ["open", "embargoed"]
    finally:
        code, _, err = _stop_cli(process, signal.SIGTERM)
    assert code == 0, err
