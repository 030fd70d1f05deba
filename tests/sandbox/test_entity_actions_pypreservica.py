"""pyPreservica 4.2.2, unchanged, managing the sandbox repository: moves, security tags, save,
identifiers and metadata — and the Content API search index following every change."""

from __future__ import annotations

import time
from typing import Any

import pyPreservica
import pytest
import requests
from preservica_sandbox import SandboxServer
from preservica_sandbox.repository import Repository
from pyPreservica import HTTPException

from tests.support.repository_tree import Tree, build_tree

from .conftest import ARCHIVIST, post_faults, stats

DC = "http://purl.org/dc/elements/1.1/"
OAI_DC = "http://www.openarchives.org/OAI/2.0/oai_dc/"
DC_DOC = f'<oai_dc:dc xmlns:oai_dc="{OAI_DC}" xmlns:dc="{DC}"><dc:title>{{}}</dc:title></oai_dc:dc>'
MODS = "http://www.loc.gov/mods/v3"


def _kwargs(server: SandboxServer) -> dict[str, str]:
    return {"username": ARCHIVIST[0], "password": ARCHIVIST[1], "server": server.server, "protocol": "http"}


@pytest.fixture
def tree(repository: Repository) -> Tree:
    return build_tree(repository)


@pytest.fixture
def entity(sandbox: SandboxServer) -> pyPreservica.EntityAPI:
    return pyPreservica.EntityAPI(**_kwargs(sandbox))


@pytest.fixture
def content(sandbox: SandboxServer) -> pyPreservica.ContentAPI:
    return pyPreservica.ContentAPI(**_kwargs(sandbox))


def _config(server: SandboxServer, **values: Any) -> dict[str, Any]:
    response = requests.post(f"{server.base_url}/_sandbox/config", json=values, timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _finish(entity: pyPreservica.EntityAPI, token: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while (status := entity.get_async_progress(token)) == "ACTIVE":
        assert time.monotonic() < deadline, f"{token} still ACTIVE"
        time.sleep(0.02)
    return status


def _refs(content: pyPreservica.ContentAPI, **filters: str) -> set[str]:
    fields = {"xip.title": "", **filters}
    return {hit["xip.reference"] for hit in content.search_index_filter_list("%", 50, fields)}


def test_move_async_keeps_the_old_parent_until_completed_then_search_follows(
    sandbox: SandboxServer, tree: Tree, entity: pyPreservica.EntityAPI, content: pyPreservica.ContentAPI
) -> None:
    _config(sandbox, entity_action_seconds=0.5)
    token = entity.move_async(entity.asset(tree.ada), entity.folder(tree.beta))
    assert entity.get_async_progress(token) == "ACTIVE"
    assert entity.asset(tree.ada).parent == tree.series_one
    assert tree.ada in _refs(content, **{"xip.parent_ref": tree.series_one})
    assert tree.ada not in {child.reference for child in entity.children(tree.beta).results}

    assert _finish(entity, token) == "COMPLETED"
    assert entity.asset(tree.ada).parent == tree.beta
    assert {child.reference for child in entity.children(tree.beta).results} == {tree.ada, tree.bob}
    assert _refs(content, **{"xip.parent_ref": tree.beta}) == {tree.ada, tree.bob}
    assert tree.ada not in _refs(content, **{"xip.parent_hierarchy": tree.alpha})


def test_move_sync_a_folder_to_the_root_and_below_another_folder(
    sandbox: SandboxServer, tree: Tree, entity: pyPreservica.EntityAPI, content: pyPreservica.ContentAPI
) -> None:
    _config(sandbox, entity_action_seconds=0)
    moved = entity.move_sync(entity.folder(tree.series_two), None)
    assert moved.parent is None
    assert tree.series_two in {child.reference for child in entity.children().results}
    assert tree.york not in _refs(content, **{"xip.parent_hierarchy": tree.alpha})

    moved = entity.move(entity.folder(tree.series_two), entity.folder(tree.beta))
    assert moved.parent == tree.beta
    assert _refs(content, **{"xip.parent_hierarchy": tree.beta}) == {tree.series_two, tree.york, tree.bob}
    with pytest.raises(RuntimeError, match="Only folders"):  # pyPreservica's own check, before any request
        entity.move_async(entity.asset(tree.york), None)


def test_move_sync_returns_the_unchanged_entity_when_the_move_fails(
    sandbox: SandboxServer, tree: Tree, entity: pyPreservica.EntityAPI
) -> None:
    _config(sandbox, entity_action_seconds=0)
    post_faults(sandbox.base_url, {"kind": "fail_entity_action", "action": "move", "message": "Move workflow failed"})
    asset = entity.move_sync(entity.asset(tree.bath), entity.folder(tree.series_two))
    assert asset.parent == tree.series_one
    (action,) = requests.get(f"{sandbox.base_url}/_sandbox/entity-actions", timeout=10).json()
    assert (action["status"], action["errors"]) == ("FAILED", ["Move workflow failed"])
    assert entity.get_async_progress(action["token"]) == "FAILED"
    # The fault was for one move only: the next one works.
    assert entity.move_sync(entity.asset(tree.bath), entity.folder(tree.series_two)).parent == tree.series_two


def test_security_tag_async_and_sync_and_the_search_index(
    sandbox: SandboxServer, tree: Tree, entity: pyPreservica.EntityAPI, content: pyPreservica.ContentAPI
) -> None:
    _config(sandbox, entity_action_seconds=0.5)
    token = entity.security_tag_async(entity.asset(tree.bob), "closed")
    assert entity.get_async_progress(token) == "ACTIVE"
    assert entity.asset(tree.bob).security_tag == "open"
    assert tree.bob not in _refs(content, **{"xip.security_descriptor": "closed"})
    assert _finish(entity, token) == "COMPLETED"
    assert entity.asset(tree.bob).security_tag == "closed"
    assert tree.bob in _refs(content, **{"xip.security_descriptor": "closed"})

    _config(sandbox, entity_action_seconds=0)
    folder = entity.security_tag_sync(entity.folder(tree.beta), "public")
    assert folder.security_tag == "public"
    assert entity.asset(tree.bob).security_tag == "closed"  # pyPreservica sends includeDescendants=false
    assert _refs(content, **{"xip.security_descriptor": "public"}) == {tree.beta, tree.york}


def test_security_tag_to_an_unknown_tag_is_refused(tree: Tree, entity: pyPreservica.EntityAPI) -> None:
    with pytest.raises(HTTPException) as raised:
        entity.security_tag_async(entity.asset(tree.ada), "top-secret")
    assert raised.value.http_status_code == 400
    assert "top-secret" in raised.value.msg and "open, closed, public" in raised.value.msg
    assert entity.asset(tree.ada).security_tag == "open"


def test_user_security_tags_follow_the_configuration(sandbox: SandboxServer, entity: pyPreservica.EntityAPI) -> None:
    assert entity.user_security_tags() == {"open": "open", "closed": "closed", "public": "public"}
    assert set(entity.user_security_tags(with_permissions=True)) == {"open", "closed", "public"}
    assert all(entity.user_security_tags(with_permissions=True).values())

    tags = {"open": ["VIEW", "DOWNLOAD"], "embargoed": ["VIEW"]}
    assert _config(sandbox, security_tags=tags)["security_tags"] == tags
    assert entity.security_tags_base(with_permissions=True) == tags
    assert entity.user_security_tags() == {"open": "open", "embargoed": "embargoed"}


def test_security_tags_use_the_namespace_of_the_configured_version(
    sandbox: SandboxServer, tree: Tree, entity: pyPreservica.EntityAPI
) -> None:
    _config(sandbox, security_tags=["open", "embargoed"], entity_action_seconds=0)
    asset = entity.security_tag_sync(entity.asset(tree.ada), "embargoed")
    assert asset.security_tag == "embargoed"
    with pytest.raises(HTTPException, match="known tags are open, embargoed"):
        entity.security_tag_sync(asset, "closed")  # no longer known
    for version in ("6.5.0", "8.1.0"):
        _config(sandbox, version=version)
        client = pyPreservica.EntityAPI(**_kwargs(sandbox))
        assert client.user_security_tags() == {"open": "open", "embargoed": "embargoed"}, version


def test_save_changes_title_and_description_but_not_tag_or_parent(
    sandbox: SandboxServer, tree: Tree, entity: pyPreservica.EntityAPI, content: pyPreservica.ContentAPI
) -> None:
    asset = entity.asset(tree.york)
    asset.title, asset.description = "Plan of Harrogate", "Town plan, 1850"
    asset.security_tag, asset.parent = "closed", tree.beta
    saved = entity.save(asset)
    assert (saved.title, saved.description, saved.security_tag, saved.parent) == (
        "Plan of Harrogate", "Town plan, 1850", "public", tree.series_two,
    )  # fmt: skip
    again = entity.asset(tree.york)
    assert (again.title, again.security_tag, again.parent) == ("Plan of Harrogate", "public", tree.series_two)
    assert {h["xip.reference"] for h in content.simple_search_list("harrogate")} == {tree.york}
    assert list(content.simple_search_list("york")) == []
    assert tree.york in _refs(content, **{"xip.description": "town plan"})


def test_identifier_calls_and_the_search_index(
    tree: Tree, entity: pyPreservica.EntityAPI, content: pyPreservica.ContentAPI
) -> None:
    asset = entity.asset(tree.bob)
    api_id = entity.add_identifier(asset, "accession", "ACC-1")
    entity.add_identifier(asset, "barcode", "B-77")
    ids = entity.entity_identifiers(asset)
    assert {(i.type, i.value) for i in ids} == {("code", "C-4"), ("accession", "ACC-1"), ("barcode", "B-77")}
    assert api_id in {i.identifier_id for i in ids}
    assert {(i.type, i.value) for i in entity.entity_identifiers(asset, "barcode")} == {("barcode", "B-77")}
    assert {e.reference for e in entity.identifier("accession", "ACC-1")} == {tree.bob}
    assert _refs(content, **{"xip.identifier": "ACC-1"}) == {tree.bob}

    assert entity.update_identifiers(asset, "accession", "ACC-2")
    assert entity.identifiers_for_entity(asset) == {("code", "C-4"), ("accession", "ACC-2"), ("barcode", "B-77")}
    assert entity.identifier("accession", "ACC-1") == set()
    assert _refs(content, **{"xip.identifier": "ACC-1"}) == set()
    assert _refs(content, **{"xip.identifier": "accession ACC-2"}) == {tree.bob}

    entity.delete_identifiers(asset, "barcode", "B-77")
    assert entity.identifiers_for_entity(asset) == {("code", "C-4"), ("accession", "ACC-2")}
    assert _refs(content, **{"xip.identifier": "B-77"}) == set()


def test_metadata_calls(tree: Tree, entity: pyPreservica.EntityAPI) -> None:
    asset = entity.add_metadata(entity.asset(tree.ada), DC, DC_DOC.format("Letter"))
    asset = entity.add_metadata_as_fragment(
        asset, MODS, f'<mods:mods xmlns:mods="{MODS}"><mods:note>unparsed</mods:note></mods:mods>'
    )
    assert sorted(asset.metadata.values()) == sorted([DC, MODS])
    assert "<dc:title>Letter</dc:title>" in (entity.metadata_for_entity(asset, DC) or "")
    assert "unparsed" in (entity.metadata_for_entity(asset, MODS) or "")
    assert entity.metadata_for_entity(asset, "urn:none") is None
    assert dict(entity.all_metadata(asset)).keys() == {DC, MODS}

    asset = entity.update_metadata(asset, DC, DC_DOC.format("Letter, revised"))
    assert entity.metadata_tag_for_entity(asset, DC, "title") == "Letter, revised"
    asset = entity.delete_metadata(asset, DC)
    assert list(asset.metadata.values()) == [MODS]
    assert entity.metadata_for_entity(entity.asset(tree.ada), DC) is None


def test_http_faults_apply_to_the_entity_action_routes(
    sandbox: SandboxServer, tree: Tree, entity: pyPreservica.EntityAPI
) -> None:
    _config(sandbox, entity_action_seconds=0)
    post_faults(
        sandbox.base_url, {"kind": "status", "route": "PUT /api/entity/*/parent-ref", "status": 503, "count": 2}
    )
    assert entity.move_sync(entity.asset(tree.ada), entity.folder(tree.beta)).parent == tree.beta
    assert stats(sandbox.base_url)["faults_fired"]["status"] == 2
    actions = requests.get(f"{sandbox.base_url}/_sandbox/entity-actions", timeout=10).json()
    assert [a["status"] for a in actions] == ["COMPLETED"]  # the refused attempts queued nothing

    logins = stats(sandbox.base_url)["logins"]["archivist"]
    post_faults(sandbox.base_url, {"kind": "status", "route": "PUT /api/entity/*/security-descriptor", "status": 401})
    token = entity.security_tag_async(entity.asset(tree.ada), "closed")  # pyPreservica logs in again and retries
    assert _finish(entity, token) == "COMPLETED" and entity.asset(tree.ada).security_tag == "closed"
    assert stats(sandbox.base_url)["logins"]["archivist"] == logins + 1

    post_faults(sandbox.base_url, {"kind": "latency", "route": "GET /api/security/tags", "seconds": 0.4, "count": 1})
    started = time.monotonic()
    assert "open" in entity.user_security_tags()
    assert time.monotonic() - started >= 0.4
