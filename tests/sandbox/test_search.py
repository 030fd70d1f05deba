"""Search semantics, in process: free text, filters, negation, hierarchy, dates, sort, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from preservica_sandbox.repository import Repository
from preservica_sandbox.search import SearchError, engine_for, parse_metadata, parse_query

from tests.support.repository_tree import Tree, build_tree


@pytest.fixture
def tree_repo() -> tuple[Tree, Repository]:
    repo = Repository()
    return build_tree(repo), repo


def refs(repo: Repository, text: str = "%", fields: list[dict[str, Any]] | None = None, **extra: Any) -> list[str]:
    q = json.dumps({"q": text, "fields": fields or [], **extra})
    return [e.ref for e in engine_for(repo).search(parse_query(q))]


def test_wildcards_and_empty_text_match_every_folder_and_asset(tree_repo: tuple[Tree, Repository]) -> None:
    tree, repo = tree_repo
    everything = [tree.alpha, tree.series_one, tree.series_two, tree.beta, tree.ada, tree.bath, tree.york, tree.bob]
    for text in ("%", "*", "", "  "):
        assert refs(repo, text) == everything  # insertion order
    assert engine_for(repo).search(parse_query(None)) == engine_for(repo).search(parse_query('{"q": "%"}'))


def test_free_text_terms_are_anded_substrings_of_title_description_or_identifier(
    tree_repo: tuple[Tree, Repository],
) -> None:
    tree, repo = tree_repo
    assert refs(repo, "LETTER") == [tree.ada, tree.bob]
    assert refs(repo, "letter engine") == [tree.ada]  # second term from the description
    assert refs(repo, "%bath%") == [tree.bath]
    assert refs(repo, "c-3") == [tree.york]  # identifier value
    assert refs(repo, "9780000000001") == [tree.ada]
    assert refs(repo, f"id:{tree.york}") == [tree.york]
    assert refs(repo, "letter unicorn") == []


def test_field_filters_or_values_and_and_fields(tree_repo: tuple[Tree, Repository]) -> None:
    tree, repo = tree_repo
    doc_io = {"name": "xip.document_type", "values": ["io"]}
    assert refs(repo, fields=[doc_io]) == [tree.ada, tree.bath, tree.york, tree.bob]
    tags = {"name": "xip.security_descriptor", "values": ["OPEN", "public"]}
    assert refs(repo, fields=[doc_io, tags]) == [tree.ada, tree.york, tree.bob]
    assert refs(repo, fields=[{"name": "xip.title", "values": ["map", "photo*"]}]) == [tree.bath, tree.york]
    assert refs(repo, fields=[{"name": "xip.description", "values": ["SNOW"]}]) == [tree.bath]
    assert refs(repo, fields=[{"name": "xip.reference", "values": [tree.bob.upper()]}]) == [tree.bob]
    assert refs(repo, fields=[{"name": "xip.parent_ref", "values": [tree.series_one]}]) == [tree.ada, tree.bath]
    # empty values, "" and wildcards only ask for the field back
    for values in ([], [""], ["*"], ["%"]):
        assert len(refs(repo, fields=[{"name": "xip.title", "values": values}])) == 8


def test_negation_keeps_entities_matching_none_of_the_values(tree_repo: tuple[Tree, Repository]) -> None:
    tree, repo = tree_repo
    not_closed = {"name": "xip.security_descriptor", "values": ["closed"], "operator": "NOT"}
    assets = {"name": "xip.document_type", "values": ["IO"]}
    assert refs(repo, fields=[assets, not_closed]) == [tree.ada, tree.york, tree.bob]
    not_either = {"name": "xip.security_descriptor", "values": ["closed", "public"], "operator": "not"}
    assert refs(repo, fields=[assets, not_either]) == [tree.ada, tree.bob]
    not_under_alpha = {"name": "xip.parent_hierarchy", "values": [tree.alpha], "operator": "NOT"}
    assert refs(repo, fields=[assets, not_under_alpha]) == [tree.bob]


def test_parent_hierarchy_is_recursive_and_unknown_folders_match_nothing(tree_repo: tuple[Tree, Repository]) -> None:
    tree, repo = tree_repo
    below = {"name": "xip.parent_hierarchy", "values": [tree.alpha]}
    assert refs(repo, fields=[below]) == [tree.series_one, tree.series_two, tree.ada, tree.bath, tree.york]
    both = {"name": "xip.parent_hierarchy", "values": [tree.series_two, tree.beta]}
    assert refs(repo, fields=[both]) == [tree.york, tree.bob]
    assert refs(repo, fields=[{"name": "xip.parent_hierarchy", "values": [tree.ada]}]) == []
    gone = "00000000-0000-4000-8000-000000000000"
    assert refs(repo, fields=[{"name": "xip.parent_hierarchy", "values": [gone]}]) == []
    within = engine_for(repo).search(parse_query('{"q": "letter"}', within=tree.alpha))
    assert [e.ref for e in within] == [tree.ada]


def test_identifier_filter_matches_value_or_type_and_value(tree_repo: tuple[Tree, Repository]) -> None:
    tree, repo = tree_repo
    assert refs(repo, fields=[{"name": "xip.identifier", "values": ["c-2", "C-3"]}]) == [tree.bath, tree.york]
    assert refs(repo, fields=[{"name": "xip.identifier", "values": ["isbn 9780000000001"]}]) == [tree.ada]
    assert refs(repo, fields=[{"name": "xip.identifier", "values": ["code 9780000000001"]}]) == []
    assert refs(repo, fields=[{"name": "xip.identifier", "values": ["C-"]}]) == []  # equality, not substring


def test_created_prefix_and_inclusive_ranges(tree_repo: tuple[Tree, Repository]) -> None:
    tree, repo = tree_repo
    created = "xip.created"
    assert refs(repo, fields=[{"name": created, "values": ["2020"]}]) == [tree.bath, tree.york]
    assert refs(repo, fields=[{"name": created, "values": ["2020-05-01"]}]) == [tree.york]
    assert refs(repo, fields=[{"name": created, "values": ["[2020-01-15 TO 2020-05-01]"]}]) == [tree.bath, tree.york]
    assert refs(repo, fields=[{"name": created, "values": ["[2021-01-01 TO *]"]}]) == [tree.bob]
    before_2019 = refs(repo, fields=[{"name": created, "values": ["[* to 2018-12-31]"]}])
    assert before_2019 == [tree.alpha, tree.series_one, tree.series_two, tree.beta]


def test_sort_with_reference_tie_break_and_missing_values_last(tree_repo: tuple[Tree, Repository]) -> None:
    tree, repo = tree_repo
    assets = [{"name": "xip.document_type", "values": ["IO"]}]
    by_title = refs(repo, fields=assets, sort=[{"sortFields": ["xip.title"], "sortOrder": "asc"}])
    assert by_title == [tree.ada, tree.bob, tree.york, tree.bath]
    desc = refs(repo, fields=assets, sort=[{"sortFields": ["xip.title"], "sortOrder": "DESC"}])
    assert desc == list(reversed(by_title))
    by_tag_then_created = refs(
        repo,
        fields=assets,
        sort=[
            {"sortFields": ["xip.security_descriptor"], "sortOrder": "asc"},
            {"sortFields": ["xip.created"], "sortOrder": "desc"},
        ],
    )
    assert by_tag_then_created == [tree.bath, tree.bob, tree.ada, tree.york]
    by_description = refs(repo, fields=assets, sort=[{"sortFields": ["xip.description"], "sortOrder": "desc"}])
    assert by_description[-1] == tree.bob  # no description: last in either direction
    ties = refs(repo, fields=assets, sort=[{"sortFields": ["xip.document_type"]}])
    assert ties == sorted(ties)  # all equal: reference order


def test_rows_leave_out_missing_values_and_list_multi_valued_fields(tree_repo: tuple[Tree, Repository]) -> None:
    tree, repo = tree_repo
    engine = engine_for(repo)
    fields = parse_metadata(["xip.reference,xip.description", "xip.identifier", "xip.parent_hierarchy"])
    ada, bob = repo.require(tree.ada), repo.require(tree.bob)
    rows = engine.rows([ada, bob], fields)
    assert rows[0] == [
        {"name": "xip.reference", "value": tree.ada},
        {"name": "xip.description", "value": "About the analytical engine"},
        {"name": "xip.identifier", "value": ["code C-1", "isbn 9780000000001"]},
        {"name": "xip.parent_hierarchy", "value": [tree.alpha, tree.series_one]},
    ]
    assert rows[1] == [
        {"name": "xip.reference", "value": tree.bob},
        {"name": "xip.identifier", "value": ["code C-4"]},
        {"name": "xip.parent_hierarchy", "value": [tree.beta]},
    ]
    assert "xip.title" in parse_metadata(["xip"])  # a bare short name means all its fields


def test_cache_follows_repository_changes(tree_repo: tuple[Tree, Repository]) -> None:
    tree, repo = tree_repo
    assert refs(repo, "engine") == [tree.ada]
    repo.update(tree.york, description="A steam engine on the map")
    assert refs(repo, "engine") == [tree.ada, tree.york]
    repo.delete(tree.ada)
    assert refs(repo, "engine") == [tree.york]


@pytest.mark.parametrize(
    ("q", "message"),
    [
        ("{not json", "not valid JSON"),
        ('["q"]', "JSON object"),
        ('{"q": 5}', "q.q must be a string"),
        ('{"q": "%", "fields": {}}', "q.fields must be a list"),
        ('{"q": "%", "fields": [{"name": "xip.colour", "values": []}]}', "unknown field 'xip.colour'"),
        ('{"q": "%", "fields": [{"name": "xip.title", "values": [], "operator": "MAYBE"}]}', "operator"),
        ('{"q": "%", "fields": [{"name": "xip.title", "values": [{"a": 1}]}]}', "values"),
        ('{"q": "%", "sort": [{"sortFields": ["xip.colour"]}]}', "unknown field"),
        ('{"q": "%", "sort": [{"sortFields": ["xip.title"], "sortOrder": "up"}]}', "asc or desc"),
    ],
)
def test_malformed_queries_say_what_is_wrong(q: str, message: str) -> None:
    with pytest.raises(SearchError, match=message):
        parse_query(q)


def test_unknown_metadata_field() -> None:
    with pytest.raises(SearchError, match=r"unknown field 'oai_dc\.subject' in metadata"):
        parse_metadata(["xip.title,oai_dc.subject"])
