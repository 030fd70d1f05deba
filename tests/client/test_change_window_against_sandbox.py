"""The change feed through the hook: one window at a time, with the boundary, paging and filter cases
that would lose or repeat a change. The sandbox's clock is driven by hand, so every timestamp (and so
every window boundary) is chosen by the test."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from preservica_sandbox import SandboxServer

from airflow_provider_preservica.changes.window import FeedCursor, FeedFilter, read_window
from airflow_provider_preservica.client.changes import ChangeFeedService, FeedPage
from airflow_provider_preservica.client.search import SearchQuery
from airflow_provider_preservica.exceptions import PreservicaConfigError
from airflow_provider_preservica.hooks.preservica import PreservicaHook

FEED = "GET /api/entity/entities/updated-since"
SEARCH = "POST /api/content/search"
T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now.timestamp()

    def at(self, seconds: float) -> datetime:
        self.now = T0 + timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock(preservica_conn: SandboxServer) -> Iterator[Clock]:
    repository = preservica_conn.state.repository
    repository.clear()
    clock = Clock(T0)
    previous = repository.clock
    repository.clock = clock
    yield clock
    repository.clock = previous


def requests_to(server: SandboxServer, route: str) -> int:
    return int(server.state.stats()["requests"].get(route, 0))


def test_a_change_at_the_boundary_is_reported_once_and_a_later_change_of_the_same_entity_again(
    preservica_conn: SandboxServer, clock: Clock
) -> None:
    repo = preservica_conn.state.repository
    clock.at(-10)  # made well before the first window (and its overlap)
    folder = repo.add_folder("Letters")
    a = repo.add_asset("a", folder.ref)
    b = repo.add_asset("b", folder.ref)
    hook = PreservicaHook()

    clock.at(1)
    repo.update(a.ref, title="a, retitled")
    boundary = clock.at(1.5)
    repo.update(b.ref, title="b, retitled")  # stamped exactly where the first window ends
    first, cursor = read_window(hook.changes, hook, FeedCursor(T0 + timedelta(seconds=0.5)), boundary)
    # The sandbox reads endDate as exclusive: b is not in this window ...
    assert [e.ref for e in first.changed] == [a.ref]

    # ... and the next window, overlapping by 2 s, reports b and not a again (a changed only in the overlap).
    before = requests_to(preservica_conn, FEED)
    second, cursor = read_window(hook.changes, hook, cursor, clock.at(3))
    assert [e.ref for e in second.changed] == [b.ref]
    assert requests_to(preservica_conn, FEED) - before == 2  # the overlap held a reported ref: one check more

    clock.at(3.5)
    repo.update(a.ref, title="a, again")  # a changes after the boundary: it must be reported again
    third, cursor = read_window(hook.changes, hook, cursor, clock.at(4))
    assert [e.ref for e in third.changed] == [a.ref]
    assert third.since == "2026-03-02T09:00:03.000Z" and third.until == "2026-03-02T09:00:04.000Z"

    quiet, cursor = read_window(hook.changes, hook, cursor, clock.at(60))  # a is in its overlap: checked, quiet
    assert not quiet
    for end in (120, 180, 240):
        before = requests_to(preservica_conn, FEED)
        quiet, cursor = read_window(hook.changes, hook, cursor, clock.at(end))
        assert not quiet and requests_to(preservica_conn, FEED) - before == 1  # a quiet feed: one request a poll


def test_filters_by_collection_and_type_with_one_search_per_hundred_refs(
    preservica_conn: SandboxServer, clock: Clock
) -> None:
    repo = preservica_conn.state.repository
    collection = repo.add_folder("Collection X")
    series = repo.add_folder("Series", parent=collection.ref)
    inside = [repo.add_asset(f"in {n}", series.ref).ref for n in range(150)]
    elsewhere = repo.add_folder("Collection Y")
    outside = repo.add_asset("out", elsewhere.ref).ref
    gone = repo.add_asset("doomed", series.ref).ref
    clock.at(10)
    repo.delete(gone)
    hook = PreservicaHook()

    searches = requests_to(preservica_conn, SEARCH)
    everything, _ = read_window(
        hook.changes, hook, FeedCursor(T0 - timedelta(seconds=5)), clock.at(20), wanted=FeedFilter(collection.ref)
    )
    assert {e.ref for e in everything.changed} == {collection.ref, series.ref, *inside}
    assert outside not in {e.ref for e in everything.changed}
    assert [e.ref for e in everything.deleted] == [gone]
    assert requests_to(preservica_conn, SEARCH) - searches == 2  # 152 live refs -> 2 searches, not 152

    assets, _ = read_window(
        hook.changes,
        hook,
        FeedCursor(T0 - timedelta(seconds=5)),
        clock.at(20),
        wanted=FeedFilter(collection.ref, ("IO",)),
    )
    assert [e.ref for e in assets.changed] == inside
    payload = assets.payload(max_refs=100)
    assert len(payload["refs"]) == 100 and payload["count"] == 151 and payload["truncated"] is True


def test_an_entity_that_leaves_the_window_while_we_page_does_not_make_us_skip_another(
    preservica_conn: SandboxServer, clock: Clock
) -> None:
    repo = preservica_conn.state.repository
    folder = repo.add_folder("Many")
    refs = []
    for n in range(25):
        clock.at(1 + n * 0.01)
        refs.append(repo.add_asset(f"asset {n}", folder.ref).ref)

    class ChangingMeanwhile(ChangeFeedService):
        """Someone edits the first asset between our first and second page."""

        def page(self, since: datetime, until: datetime | None, start: int = 0, size: int = 10) -> FeedPage:
            page = super().page(since, until, start, size)
            if start == 0:
                clock.at(30)
                repo.update(refs[0], title="edited while paging")  # leaves the window [0, 20)
            return page

    feed = ChangingMeanwhile(PreservicaHook().get_conn())
    seen = feed.read_window(T0, T0 + timedelta(seconds=20), page_size=10)
    assert {e.ref for e in seen} == {folder.ref, *refs}  # nothing skipped at the page boundary


def test_bad_arguments_say_what_to_write(preservica_conn: SandboxServer) -> None:
    from airflow_provider_preservica.client.changes import check_entity_types, parse_instant

    with pytest.raises(PreservicaConfigError, match="2024-05-01T12:00:00Z"):
        parse_instant("last tuesday")
    with pytest.raises(PreservicaConfigError, match="IO"):
        check_entity_types(["assets"])


class LaggingIndex:
    """The hook, but Preservica's search index has not caught up with ``hidden`` yet (it indexes in the
    background); the feed itself is the sandbox's."""

    def __init__(self, hook: PreservicaHook, hidden: set[str]) -> None:
        self.hook, self.hidden = hook, hidden

    def search(self, query: SearchQuery | str = "%", **kwargs: Any) -> list[Any]:
        return [hit for hit in self.hook.search(query, **kwargs) if hit.reference not in self.hidden]


def test_a_change_the_search_index_has_not_seen_yet_is_reported_when_it_can_be_placed(
    preservica_conn: SandboxServer, clock: Clock
) -> None:
    repo = preservica_conn.state.repository
    clock.at(-10)
    collection = repo.add_folder("Collection X")
    clock.at(1)
    fresh = repo.add_asset("just ingested", collection.ref)
    hook = PreservicaHook()
    index = LaggingIndex(hook, {fresh.ref})
    wanted = FeedFilter(collection.ref, ("IO",))

    first, cursor = read_window(hook.changes, index, FeedCursor(T0), clock.at(2), wanted=wanted)
    assert first.changed == [] and [e.ref for e in first.unresolved] == [fresh.ref]
    assert FeedCursor.from_json(cursor.to_json()) == cursor  # the pending ref survives a restart

    second, cursor = read_window(hook.changes, index, cursor, clock.at(3), wanted=wanted)
    assert not second  # still not indexed: nothing new to say

    index.hidden.clear()  # the index caught up
    third, cursor = read_window(hook.changes, index, cursor, clock.at(4), wanted=wanted)
    assert [e.ref for e in third.changed] == [fresh.ref] and cursor.pending == ()

    searches = requests_to(preservica_conn, SEARCH)
    quiet, _ = read_window(hook.changes, index, cursor, clock.at(10), wanted=wanted)
    assert not quiet and requests_to(preservica_conn, SEARCH) == searches  # nothing pending: no search


def test_an_entity_never_indexed_is_given_up_after_resolve_for(preservica_conn: SandboxServer, clock: Clock) -> None:
    repo = preservica_conn.state.repository
    clock.at(-10)
    collection = repo.add_folder("Collection X")
    clock.at(1)
    ghost = repo.add_asset("never indexed", collection.ref)
    hook = PreservicaHook()
    index = LaggingIndex(hook, {ghost.ref})
    wanted = FeedFilter(collection.ref, ("IO",))
    _, cursor = read_window(hook.changes, index, FeedCursor(T0), clock.at(2), wanted=wanted, resolve_for=60)
    _, cursor = read_window(hook.changes, index, cursor, clock.at(30), wanted=wanted, resolve_for=60)
    assert [p[0] for p in cursor.pending] == [ghost.ref]
    _, cursor = read_window(hook.changes, index, cursor, clock.at(120), wanted=wanted, resolve_for=60)
    assert cursor.pending == ()
