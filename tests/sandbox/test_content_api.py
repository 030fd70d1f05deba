"""Content API over HTTP: paging, parameters in every form, search-within, errors, details."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
import requests
from preservica_sandbox import SandboxServer
from preservica_sandbox.repository import Repository

from tests.support.repository_tree import Tree, build_tree

ASSETS_ONLY = {"name": "xip.document_type", "values": ["IO"]}


@pytest.fixture
def tree(repository: Repository) -> Tree:
    return build_tree(repository)


def search(
    server: SandboxServer,
    auth: dict[str, str],
    q: dict[str, Any] | str | None,
    method: str = "POST",
    path: str = "search",
    **params: Any,
) -> requests.Response:
    data: dict[str, Any] = dict(params)
    if q is not None:
        data["q"] = q if isinstance(q, str) else json.dumps(q)
    url = f"{server.base_url}/api/content/{path}"
    if method == "GET":
        return requests.get(url, params=data, headers=auth, timeout=30)
    return requests.post(url, data=data, headers=auth, timeout=30)


def page_through(
    server: SandboxServer, auth: dict[str, str], q: dict[str, Any], size: int, method: str = "POST", **params: Any
) -> tuple[list[str], list[list[dict[str, Any]]], int]:
    ids: list[str] = []
    rows: list[list[dict[str, Any]]] = []
    total = -1
    while True:
        response = search(server, auth, q, method, start=len(ids), max=size, **params)
        assert response.status_code == 200, response.text
        value = response.json()["value"]
        total = value["totalHits"]
        assert len(value["metadata"]) == len(value["objectIds"])
        if not value["objectIds"]:
            return ids, rows, total
        ids.extend(value["objectIds"])
        rows.extend(value["metadata"])


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_paging_over_many_pages_returns_every_hit_exactly_once(
    sandbox: SandboxServer, repository: Repository, auth: dict[str, str], method: str
) -> None:
    repository.seed(assets=1234, random_seed=3)
    expected = {f"sdb:{e.kind}|{e.ref}" for e in repository.entities()}
    ids, rows, total = page_through(sandbox, auth, {"q": "%"}, 97, method, metadata="xip.reference")
    assert total == len(expected) == len(ids) == len(set(ids))
    assert set(ids) == expected
    assert all(row == [{"name": "xip.reference", "value": i.split("|")[1]}] for i, row in zip(ids, rows, strict=True))


def test_sorted_paging_with_many_equal_titles_neither_skips_nor_repeats(
    sandbox: SandboxServer, repository: Repository, auth: dict[str, str]
) -> None:
    repository.seed(assets=900, random_seed=5)
    q = {"q": "%", "fields": [ASSETS_ONLY], "sort": [{"sortFields": ["xip.title"], "sortOrder": "desc"}]}
    ids, rows, total = page_through(sandbox, auth, q, 50, metadata=["xip.title", "xip.reference"])
    assert total == 900 == len(set(ids)) == len(ids)
    keys = [(row[0]["value"].lower(), row[1]["value"]) for row in rows]
    titles = [title for title, _ in keys]
    assert len(set(titles)) < 900  # ties exist, so the tie-break is exercised
    assert titles == sorted(titles, reverse=True)
    for (title_a, ref_a), (title_b, ref_b) in itertools.pairwise(keys):
        assert title_a != title_b or ref_a < ref_b


def test_max_minus_one_returns_all_remaining_hits(sandbox: SandboxServer, tree: Tree, auth: dict[str, str]) -> None:
    value = search(sandbox, auth, {"q": "%", "fields": [ASSETS_ONLY]}, start=1, max=-1).json()["value"]
    assert value["totalHits"] == 4 and len(value["objectIds"]) == 3
    assert value["objectIds"] == [f"sdb:IO|{r}" for r in (tree.bath, tree.york, tree.bob)]


def test_response_shape_and_metadata_as_comma_list_or_repeated_keys(
    sandbox: SandboxServer, tree: Tree, auth: dict[str, str]
) -> None:
    q = {"q": "letter"}
    comma = search(sandbox, auth, q, metadata="xip.title,xip.parent_ref, xip.security_descriptor")
    repeated = search(sandbox, auth, q, metadata=["xip.title", "xip.parent_ref", "xip.security_descriptor"])
    body = comma.json()
    assert comma.headers["content-type"].startswith("application/json")
    assert body["success"] is True and body["version"] == 1
    assert body == repeated.json()
    assert body["value"]["objectIds"] == [f"sdb:IO|{tree.ada}", f"sdb:IO|{tree.bob}"]
    assert body["value"]["totalHits"] == 2
    assert body["value"]["metadata"][1] == [
        {"name": "xip.title", "value": "Letter to Bob"},
        {"name": "xip.parent_ref", "value": tree.beta},
        {"name": "xip.security_descriptor", "value": "open"},
    ]
    get = search(sandbox, auth, q, "GET", metadata=["xip.title,xip.parent_ref", "xip.security_descriptor"])
    assert get.json() == body
    defaulted = search(sandbox, auth, {"q": "letter", "fields": [{"name": "xip.title", "values": []}]})
    assert defaulted.json()["value"]["metadata"][0] == [{"name": "xip.title", "value": "Letter from Ada"}]


def test_filters_negation_and_sort_over_http(sandbox: SandboxServer, tree: Tree, auth: dict[str, str]) -> None:
    q = {
        "q": "%",
        "fields": [ASSETS_ONLY, {"name": "xip.security_descriptor", "values": ["closed"], "operator": "NOT"}],
        "sort": [{"sortFields": ["xip.created"], "sortOrder": "desc"}],
    }
    value = search(sandbox, auth, q, metadata="xip.created").json()["value"]
    assert value["objectIds"] == [f"sdb:IO|{r}" for r in (tree.bob, tree.york, tree.ada)]
    assert [row[0]["value"] for row in value["metadata"]] == [
        "2021-12-31T23:59:59.000Z",
        "2020-05-01T12:00:00.000Z",
        "2019-03-04T10:00:00.000Z",
    ]


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_search_within_a_folder_hierarchy(
    sandbox: SandboxServer, tree: Tree, auth: dict[str, str], method: str
) -> None:
    response = search(sandbox, auth, {"q": "%", "fields": [ASSETS_ONLY]}, method, "search-within",
                      parenthierarchy=tree.alpha, max=-1)  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.json()["value"]["objectIds"] == [f"sdb:IO|{r}" for r in (tree.ada, tree.bath, tree.york)]
    unknown = search(sandbox, auth, {"q": "%"}, method, "search-within",
                     parenthierarchy="00000000-0000-4000-8000-000000000000")  # fmt: skip
    assert unknown.status_code == 404 and unknown.json()["success"] is False
    assert "00000000-0000-4000-8000-000000000000" in unknown.json()["message"]
    asset = search(sandbox, auth, {"q": "%"}, method, "search-within", parenthierarchy=tree.ada)
    assert asset.status_code == 404
    missing = search(sandbox, auth, {"q": "%"}, method, "search-within")
    assert missing.status_code == 400 and "parenthierarchy" in missing.json()["message"]


def test_empty_result(sandbox: SandboxServer, tree: Tree, auth: dict[str, str]) -> None:
    value = search(sandbox, auth, {"q": "no such words anywhere"}, metadata="xip.title").json()["value"]
    assert value == {"objectIds": [], "totalHits": 0, "metadata": []}
    beyond = search(sandbox, auth, {"q": "%"}, start=100, max=10).json()["value"]
    assert beyond["objectIds"] == [] and beyond["totalHits"] == 8


@pytest.mark.parametrize(
    ("q", "params", "message"),
    [
        ("{oops", {}, "not valid JSON"),
        ("plain words", {}, "not valid JSON"),
        ({"q": "%", "fields": [{"name": "xip.nope", "values": []}]}, {}, "unknown field 'xip.nope'"),
        ({"q": "%"}, {"metadata": "xip.title,rm.location"}, "unknown field 'rm.location'"),
        ({"q": "%", "sort": [{"sortFields": ["xip.nope"]}]}, {}, "unknown field 'xip.nope'"),
        ({"q": "%"}, {"start": "-1"}, "start must be at least 0"),
        ({"q": "%"}, {"max": "ten"}, "max must be an integer"),
        ({"q": "%"}, {"max": "-2"}, "max must be at least -1"),
    ],
)
def test_bad_queries_get_400_with_a_json_message(
    sandbox: SandboxServer, tree: Tree, auth: dict[str, str], q: Any, params: dict[str, Any], message: str
) -> None:
    for method in ("POST", "GET"):
        response = search(sandbox, auth, q, method, **params)
        assert response.status_code == 400, response.text
        assert response.json()["success"] is False
        assert message in response.json()["message"]


def test_search_needs_a_token(sandbox: SandboxServer, tree: Tree) -> None:
    assert search(sandbox, {}, {"q": "%"}).status_code == 401


def test_index_follows_entity_api_changes(sandbox: SandboxServer, tree: Tree, auth: dict[str, str]) -> None:
    def titles(text: str) -> list[str]:
        value = search(sandbox, auth, {"q": text}, metadata="xip.title").json()["value"]
        return [row[0]["value"] for row in value["metadata"]]

    url = f"{sandbox.base_url}/api/entity/information-objects/{tree.york}"
    body = (
        '<InformationObject xmlns="http://preservica.com/XIP/v7.7"><Ref>' + tree.york + "</Ref>"
        "<Title>Chart of Whitby</Title><Description>Harbour chart</Description></InformationObject>"
    )
    assert requests.put(url, data=body, headers=auth, timeout=10).status_code == 200
    assert titles("york") == []
    assert titles("whitby harbour") == ["Chart of Whitby"]
    ident = '<Identifier xmlns="http://preservica.com/XIP/v7.7"><Type>isbn</Type><Value>X-77</Value></Identifier>'
    assert requests.post(f"{url}/identifiers", data=ident, headers=auth, timeout=10).status_code == 200
    by_id = {"q": "%", "fields": [{"name": "xip.identifier", "values": ["x-77"]}]}
    assert search(sandbox, auth, by_id).json()["value"]["objectIds"] == [f"sdb:IO|{tree.york}"]


def test_indexed_fields(sandbox: SandboxServer, auth: dict[str, str]) -> None:
    response = requests.get(f"{sandbox.base_url}/api/content/indexed-fields", headers=auth, timeout=10)
    body = response.json()
    assert body["success"] is True
    names = {f"{f['shortName']}.{f['index']}" for f in body["value"]}
    assert {
        "xip.title",
        "xip.description",
        "xip.reference",
        "xip.document_type",
        "xip.parent_ref",
        "xip.parent_hierarchy",
        "xip.security_descriptor",
        "xip.identifier",
        "xip.created",
    } <= names
    assert all(f["uri"] == "http://preservica.com/XIP/v7.7" for f in body["value"])


def test_object_details(sandbox: SandboxServer, tree: Tree, auth: dict[str, str]) -> None:
    url = f"{sandbox.base_url}/api/content/object-details"
    value = requests.get(url, params={"id": f"sdb:IO|{tree.ada}"}, headers=auth, timeout=10).json()["value"]
    assert value["name"] == "Letter from Ada" and value["cmis:objectId"] == f"sdb:IO|{tree.ada}"
    assert value["cmis:parentId"] == f"sdb:SO|{tree.series_one}"
    assert value["xip.identifier"] == ["code C-1", "isbn 9780000000001"]
    assert value["cmis:creationDate"] == "2019-03-04T10:00:00.000Z"
    no_history = requests.get(
        url, params={"id": f"sdb:SO|{tree.alpha}", "excludeproperties": "history"}, headers=auth, timeout=10
    ).json()["value"]
    assert no_history["cmis:baseTypeId"] == "cmis:folder" and "cmis:creationDate" not in no_history
    assert requests.get(url, params={"id": f"sdb:SO|{tree.ada}"}, headers=auth, timeout=10).status_code == 404
    unknown = requests.get(url, params={"id": "sdb:IO|00000000-0000-4000-8000-000000000000"}, headers=auth, timeout=10)
    assert unknown.status_code == 404 and unknown.json()["success"] is False
    assert requests.get(url, params={"id": "nonsense"}, headers=auth, timeout=10).status_code == 400
