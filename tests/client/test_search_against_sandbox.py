"""Content API search and Entity API helpers of the hook, against the sandbox."""

from __future__ import annotations

import pytest

from airflow_provider_preservica.client.entities import EntityNotFoundError
from airflow_provider_preservica.client.search import PreservicaSearchError, SearchQuery
from airflow_provider_preservica.hooks.preservica import PreservicaHook
from tests.support.sandbox import MAPS_FOLDER, inject, logins


def refs(pager) -> list[str]:
    return [hit.reference for hit in pager]


def test_paging_over_many_pages_returns_every_hit_exactly_once(preservica_conn):
    preservica_conn.state.repository.seed(assets=2500, random_seed=7)
    pager = PreservicaHook().search(
        SearchQuery(filters={"xip.document_type": "IO"}, fields=["xip.title"]), page_size=97
    )
    found = refs(pager)
    assert pager.total and pager.total >= 2500
    assert len(found) == pager.total == len(set(found))
    assert pager.pages == -(-pager.total // 97)


def test_filters_negation_and_sort(small_repository):
    hook = PreservicaHook()
    open_assets = hook.search(
        SearchQuery(
            filters={"xip.document_type": "IO", "xip.security_descriptor": "open"},
            fields=["xip.title"],
            sort=[("xip.title", "asc")],
        )
    )
    assert [hit.value("xip.title") for hit in open_assets] == ["Map of Bath, 1850", "Map of Cornwall; with notes"]
    not_closed = hook.search(
        SearchQuery(
            filters={"xip.document_type": "IO"},
            exclude={"xip.security_descriptor": "closed"},
            sort=[("xip.title", "desc")],
            fields=["xip.title"],
        )
    )
    assert [hit.value("xip.title") for hit in not_closed] == [
        "Plan of Ham estate",
        "Map of Cornwall; with notes",
        "Map of Bath, 1850",
    ]
    either = hook.search(
        SearchQuery(filters={"xip.security_descriptor": ["public", "closed"], "xip.document_type": "IO"})
    )
    assert sorted(refs(either)) == [
        "b0000000-0000-4000-8000-000000000001",
        "c0000000-0000-4000-8000-000000000001",
        "d0000000-0000-4000-8000-000000000001",
    ]


def test_search_within_a_folder_and_free_text(small_repository):
    hook = PreservicaHook()
    within = hook.search(SearchQuery(parent_ref=MAPS_FOLDER, filters={"xip.document_type": "IO"}))
    assert sorted(refs(within)) == [
        "b0000000-0000-4000-8000-000000000001",
        "b0000000-0000-4000-8000-000000000002",
        "b0000000-0000-4000-8000-000000000003",
        "c0000000-0000-4000-8000-000000000001",
    ]
    text = hook.search(SearchQuery(text="map maker"))
    assert refs(text) == ["d0000000-0000-4000-8000-000000000001"]


def test_empty_result_and_limit(small_repository):
    hook = PreservicaHook()
    empty = hook.search(SearchQuery(text="no such thing anywhere"))
    assert refs(empty) == [] and empty.total == 0
    limited = hook.search(SearchQuery(filters={"xip.document_type": "IO"}), page_size=2, limit=3)
    assert len(refs(limited)) == 3 and limited.pages == 2


def _walk_with_fault_after(server, fault_after: int, **fault) -> list[str]:
    """Iterate a 600-hit search in pages of 50 and inject ``fault`` once ``fault_after`` hits are in."""
    found = []
    for hit in PreservicaHook().search(SearchQuery(filters={"xip.document_type": "IO"}), page_size=50):
        found.append(hit.reference)
        if len(found) == fault_after:
            inject(server, **fault)
    return found


def test_a_429_and_a_503_in_the_middle_of_paging_lose_nothing(preservica_conn):
    preservica_conn.state.repository.seed(assets=600, random_seed=3)
    baseline = refs(PreservicaHook().search(SearchQuery(filters={"xip.document_type": "IO"}), page_size=50))
    with_429 = _walk_with_fault_after(
        preservica_conn, 120, kind="status", route="POST /api/content/search", status=429, count=1, retry_after=0
    )
    with_503 = _walk_with_fault_after(
        preservica_conn, 260, kind="status", route="POST /api/content/search", status=503, count=2, retry_after=0
    )
    assert with_429 == baseline and with_503 == baseline
    assert preservica_conn.state.stats()["faults_fired"] == {"status": 3}


def test_token_expiry_in_the_middle_of_a_long_report_costs_one_login(preservica_conn):
    preservica_conn.state.repository.seed(assets=600, random_seed=3)
    baseline = refs(PreservicaHook().search(SearchQuery(filters={"xip.document_type": "IO"}), page_size=50))
    assert logins(preservica_conn) == 1
    found = _walk_with_fault_after(preservica_conn, 300, kind="expire_tokens")
    assert found == baseline
    assert logins(preservica_conn) == 2


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (SearchQuery(fields=["xip.no_such_field"]), "xip.no_such_field"),
        (SearchQuery(filters={"xip.nope": "x"}), "xip.nope"),
        (SearchQuery(parent_ref="ffffffff-0000-4000-8000-000000000000"), "does not exist"),
    ],
)
def test_bad_queries_say_what_was_wrong(small_repository, query, message):
    with pytest.raises(PreservicaSearchError, match=message):
        list(PreservicaHook().search(query))


def test_field_names_and_sort_orders_are_checked_before_sending(sandbox):
    with pytest.raises(PreservicaSearchError, match="index name"):
        SearchQuery(fields=["title"])
    with pytest.raises(PreservicaSearchError, match="asc"):
        SearchQuery(sort=[("xip.title", "up")])  # type: ignore[list-item]


def test_entity_lookup_children_and_identifiers(small_repository):
    entities = PreservicaHook().entities
    folder = entities.get(MAPS_FOLDER)
    assert (folder.entity_type, folder.title, folder.security_tag) == ("SO", "Maps collection", "open")
    children = list(entities.children(MAPS_FOLDER, page_size=2))  # two pages, following Paging/Next
    assert sorted(c.title for c in children) == [
        "Estate plans",
        'Map of Avon, "coloured"',
        "Map of Bath, 1850",
        "Map of Cornwall; with notes",
    ]
    assert [e.ref for e in entities.find_by_identifier("code", "MAP-2")] == ["b0000000-0000-4000-8000-000000000002"]
    with pytest.raises(EntityNotFoundError, match="ffffffff"):
        entities.get("ffffffff-0000-4000-8000-000000000000")


def test_ensure_folder_is_idempotent_and_the_index_follows(small_repository):
    entities = PreservicaHook().entities
    first, created = entities.ensure_folder(
        "pipeline", "nightly-2026", title="Nightly ingest 2026", parent_ref=MAPS_FOLDER, security_tag="closed"
    )
    again, created_again = entities.ensure_folder(
        "pipeline", "nightly-2026", title="Nightly ingest 2026", parent_ref=MAPS_FOLDER, security_tag="closed"
    )
    assert created and not created_again and first.ref == again.ref and again.parent_ref == MAPS_FOLDER
    found = PreservicaHook().search(SearchQuery(text="Nightly ingest", filters={"xip.document_type": "SO"}))
    assert refs(found) == [first.ref]

    entities.set_identifier(first.ref, "SO", "catalogue-ref", "NI-1")
    entities.set_identifier(first.ref, "SO", "catalogue-ref", "NI-2")
    values = sorted((i.type, i.value) for i in entities.identifiers(first.ref, "SO"))
    assert values == [("catalogue-ref", "NI-2"), ("pipeline", "nightly-2026")]
    entities.add_metadata(first.ref, "SO", '<dc xmlns="http://purl.org/dc/elements/1.1/"><title>x</title></dc>')
