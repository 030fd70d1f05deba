"""pyPreservica 4.2.2, unchanged, searching and editing the sandbox repository."""

from __future__ import annotations

import pyPreservica
import pytest
from preservica_sandbox import SandboxServer
from preservica_sandbox.repository import Repository
from pyPreservica import Field, Operator, SortOrder

from tests.support.repository_tree import Tree, build_tree

from .conftest import ARCHIVIST

DC = "http://purl.org/dc/elements/1.1/"
DC_DOC = (
    '<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
    "<dc:title>{}</dc:title></oai_dc:dc>"
)


@pytest.fixture
def tree(repository: Repository) -> Tree:
    return build_tree(repository)


@pytest.fixture
def content(sandbox: SandboxServer) -> pyPreservica.ContentAPI:
    return pyPreservica.ContentAPI(
        username=ARCHIVIST[0], password=ARCHIVIST[1], tenant=ARCHIVIST[2], server=sandbox.server, protocol="http"
    )


@pytest.fixture
def entity(sandbox: SandboxServer) -> pyPreservica.EntityAPI:
    return pyPreservica.EntityAPI(
        username=ARCHIVIST[0], password=ARCHIVIST[1], tenant=ARCHIVIST[2], server=sandbox.server, protocol="http"
    )


def test_simple_search_list_pages_through_everything(repository: Repository, content: pyPreservica.ContentAPI) -> None:
    repository.seed(assets=600, random_seed=11)
    hits = list(content.simple_search_list("%", 70))
    expected = {e.ref for e in repository.entities()}
    assert len(hits) == len(expected) and {h["xip.reference"] for h in hits} == expected
    first = hits[0]
    assert set(first) >= {"xip.reference", "xip.title", "xip.document_type", "xip.security_descriptor"}


def test_search_index_filter_list_and_hits(tree: Tree, content: pyPreservica.ContentAPI) -> None:
    filters = {"xip.document_type": "IO", "xip.security_descriptor": ["open", "public"], "xip.title": ""}
    hits = list(content.search_index_filter_list("%", 2, filters, {"xip.title": "desc"}))
    assert [h["xip.title"] for h in hits] == ["Map of York", "Letter to Bob", "Letter from Ada"]
    assert content.search_index_filter_hits("letter", {"xip.document_type": "IO"}) == 2
    within = list(content.search_index_filter_list("%", 10, {"xip.parent_hierarchy": tree.alpha, "xip.title": ""}))
    assert {h["xip.reference"] for h in within} == {tree.series_one, tree.series_two, tree.ada, tree.bath, tree.york}


def test_search_fields_with_not_and_sort(tree: Tree, content: pyPreservica.ContentAPI) -> None:
    fields = [
        Field("xip.document_type", "IO"),
        Field("xip.security_descriptor", "closed", Operator.NOT),
        Field("xip.created", "", sort_order=SortOrder.asc),
    ]
    hits = list(content.search_fields("%", fields, page_size=2))
    assert [h["xip.reference"] for h in hits] == [tree.ada, tree.york, tree.bob]
    assert hits[0]["xip.created"] == "2019-03-04T10:00:00.000Z"


def test_indexed_fields_and_object_details(tree: Tree, content: pyPreservica.ContentAPI) -> None:
    assert "xip.parent_hierarchy" in content.indexed_fields()
    assert content.object_details("SO", tree.alpha)["name"] == "Alpha collection"
    with pytest.raises(RuntimeError):
        content.object_details("IO", tree.alpha)


def test_entity_reads(tree: Tree, entity: pyPreservica.EntityAPI) -> None:
    asset = entity.asset(tree.ada)
    assert (asset.title, asset.security_tag, asset.parent) == ("Letter from Ada", "open", tree.series_one)
    folder = entity.folder(tree.beta)
    assert (folder.title, folder.description, folder.parent) == ("Beta collection", None, None)
    with pytest.raises(pyPreservica.ReferenceNotFoundException):
        entity.asset(tree.alpha)
    page = entity.children(tree.alpha, maximum=1)
    assert page.has_more and page.total == 2 and len(page.results) == 1
    assert {e.reference for e in entity.descendants(tree.alpha)} == {tree.series_one, tree.series_two}
    assert {e.reference for e in entity.all_descendants()} == tree.folders | tree.assets
    assert {e.reference for e in entity.identifier("code", "C-3")} == {tree.york}
    assert entity.identifiers_for_entity(asset) == {("code", "C-1"), ("isbn", "9780000000001")}


def test_entity_writes_keep_the_search_index_right(
    tree: Tree, entity: pyPreservica.EntityAPI, content: pyPreservica.ContentAPI
) -> None:
    folder = entity.create_folder("Deposits 2024", "Incoming", "open", tree.alpha)
    assert entity.folder(folder.reference).parent == tree.alpha
    api_id = entity.add_identifier(folder, "deposit", "D-2024")
    assert api_id and {e.reference for e in entity.identifier("deposit", "D-2024")} == {folder.reference}
    entity.update_identifiers(folder, "deposit", "D-2025")
    assert entity.identifiers_for_entity(folder) == {("deposit", "D-2025")}
    found = list(content.search_index_filter_list("%", 10, {"xip.identifier": "D-2025", "xip.title": ""}))
    assert [h["xip.reference"] for h in found] == [folder.reference]
    entity.delete_identifiers(folder, "deposit", "D-2025")
    assert entity.identifiers_for_entity(folder) == set()

    folder = entity.add_metadata(folder, DC, DC_DOC.format("First"))
    assert list(folder.metadata.values()) == [DC]
    assert entity.metadata_tag_for_entity(folder, DC, "title") == "First"
    folder = entity.update_metadata(folder, DC, DC_DOC.format("Second"))
    assert entity.metadata_tag_for_entity(folder, DC, "title") == "Second"
    assert [schema for schema, _ in entity.all_metadata(folder)] == [DC]
    folder = entity.delete_metadata(folder, DC)
    assert folder.metadata == {}

    folder.title = "Deposits 2025"
    folder.description = "Renamed"
    saved = entity.save(folder)
    assert (saved.title, saved.description) == ("Deposits 2025", "Renamed")
    assert [h["xip.reference"] for h in content.simple_search_list("deposits 2025")] == [folder.reference]
    assert list(content.simple_search_list("deposits 2024")) == []
    under_alpha = {"xip.parent_hierarchy": tree.alpha, "xip.document_type": "SO"}
    assert folder.reference in {h["xip.reference"] for h in content.search_index_filter_list("%", 10, under_alpha)}
