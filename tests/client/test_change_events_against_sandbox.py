"""The change feed's event-type filter against the sandbox: Preservica's entity events read window by window
(paged, deduped by event id), filtered to event types, entity types and a collection; the task-side operator;
and changes made by pyPreservica 4.2.2 itself seen through the filter. The sandbox's clock is driven by hand,
so every timestamp and window boundary is chosen by the test; requests are counted, not timed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pyPreservica
import pytest
from preservica_sandbox import SandboxServer

from airflow_provider_preservica.changes.events_window import read_event_window
from airflow_provider_preservica.changes.window import FeedCursor, FeedFilter
from airflow_provider_preservica.client.entity_events import check_event_types
from airflow_provider_preservica.hooks.preservica import PreservicaHook
from airflow_provider_preservica.operators.changes import PreservicaChangesOperator
from tests.support.accounts import ARCHIVIST

EVENTS = "GET /api/entity/events"
ACTIONS = "GET /api/entity/events/{event_id}/event-actions"
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


def requests_to(server: SandboxServer, *routes: str) -> dict[str, int]:
    counts = server.state.stats()["requests"]
    return {route: int(counts.get(route, 0)) for route in routes}


def spent(server: SandboxServer, before: dict[str, int]) -> dict[str, int]:
    after = requests_to(server, *before)
    return {route: after[route] - before[route] for route in before}


def window(
    hook: PreservicaHook, cursor: FeedCursor, until: datetime, *types: str, collection: str | None = None, **kw: Any
) -> Any:
    wanted = FeedFilter(collection, kw.pop("entity_types", None), check_event_types(list(types)))
    return read_event_window(hook.entity_events, hook.changes, hook, cursor, until, wanted=wanted, **kw)


def test_only_the_event_types_asked_for_are_reported(preservica_conn: SandboxServer, clock: Clock) -> None:
    repo = preservica_conn.state.repository
    folder = repo.add_folder("Letters")
    other = repo.add_folder("Elsewhere")
    a, b, c = (repo.add_asset(name, folder.ref) for name in "abc")
    clock.at(10)
    repo.update(a.ref, title="a, retitled")  # Modified
    clock.at(11)
    repo.move(b.ref, other.ref)  # Moved
    clock.at(12)
    repo.set_security_tag(c.ref, "closed")  # SecurityChanged
    hook = PreservicaHook()
    start = FeedCursor(T0 + timedelta(seconds=5))

    for types, expected in (
        (("Modified",), [a.ref]),
        (("Moved",), [b.ref]),
        (("SecurityChanged",), [c.ref]),
        (("Moved", "Modified"), [a.ref, b.ref]),
    ):
        batch, _ = window(hook, start, clock.at(20), *types)
        assert [e.ref for e in batch.changed] == expected, types
        assert batch.payload(10)["types"] == {ref: "IO" for ref in expected}

    before = requests_to(preservica_conn, EVENTS, ACTIONS, FEED)
    nothing, _ = window(hook, start, clock.at(20), "Ingest", "Deleted")
    assert not nothing and nothing.events == 0
    assert spent(preservica_conn, before) == {EVENTS: 1, ACTIONS: 0, FEED: 0}  # an event type not there: one request


def test_a_large_window_costs_pages_and_one_listing_per_event_not_per_entity(
    preservica_conn: SandboxServer, clock: Clock
) -> None:
    repo = preservica_conn.state.repository
    box = repo.add_folder("Box 7")
    assets = [repo.add_asset(f"item {n}", box.ref).ref for n in range(120)]
    clock.at(10)
    repo.set_security_tag(box.ref, "closed", include_descendants=True)  # one event, 121 entities
    for n in range(30):
        clock.at(11 + n * 0.01)
        repo.update(assets[n], title=f"item {n}, described")  # 30 events, one entity each
    hook = PreservicaHook()

    before = requests_to(preservica_conn, EVENTS, ACTIONS, FEED, SEARCH)
    batch, _ = window(
        hook, FeedCursor(T0 + timedelta(seconds=5)), clock.at(20), "Modified", "SecurityChanged", page_size=50
    )
    assert {e.ref for e in batch.changed} == {box.ref, *assets} and batch.events == 31
    assert spent(preservica_conn, before) == {
        EVENTS: 1,  # 31 events: one page of 50
        ACTIONS: 3 + 30,  # the tag change's 121 actions in pages of 50, then one listing per edit
        FEED: 3,  # the 121 entities' types from the changed-entities feed, in pages of 50
        SEARCH: 0,  # no collection to place them in
    }
    assert batch.requests == 1 + 33 + 3

    small_pages = requests_to(preservica_conn, EVENTS)
    paged, _ = window(hook, FeedCursor(T0 + timedelta(seconds=5)), clock.at(20), "Modified", page_size=7)
    assert {e.ref for e in paged.changed} == set(assets[:30])
    assert spent(preservica_conn, small_pages) == {EVENTS: 5}  # 30 events in pages of 7: every page read

    folders, _ = window(
        hook, FeedCursor(T0 + timedelta(seconds=5)), clock.at(20), "SecurityChanged", entity_types=("SO",)
    )
    assert [e.ref for e in folders.changed] == [box.ref]


def test_windows_in_a_row_report_each_event_once_and_a_late_one_still(
    preservica_conn: SandboxServer, clock: Clock
) -> None:
    repo = preservica_conn.state.repository
    folder = repo.add_folder("Letters")
    a, b = repo.add_asset("a", folder.ref), repo.add_asset("b", folder.ref)
    hook = PreservicaHook()
    cursor = FeedCursor(T0 + timedelta(seconds=5), floor=T0 + timedelta(seconds=5))

    clock.at(9)
    repo.update(a.ref, title="a, retitled")
    boundary = clock.at(10)
    repo.update(b.ref, title="b, retitled")  # dated exactly where the first window ends
    first, cursor = window(hook, cursor, boundary, "Modified")
    assert [e.ref for e in first.changed] == [a.ref, b.ref]  # the sandbox reads ``to`` as inclusive
    assert cursor.feed == "events" and len(cursor.seen) == 2  # both are inside the next window's overlap

    second, cursor = window(hook, cursor, clock.at(11), "Modified")  # overlaps [8, 10]: both listed again
    assert not second  # ... and skipped by id: no change twice

    clock.at(11.5)
    repo.update(a.ref, title="a, again")  # a new event for a: reported again
    third, cursor = window(hook, cursor, clock.at(12), "Modified")
    assert [e.ref for e in third.changed] == [a.ref]

    # Restarted from the cursor's JSON (as the trigger does after a triggerer restart): nothing lost or repeated.
    clock.at(12.5)
    repo.update(b.ref, title="b, while no one watched")
    resumed = FeedCursor.from_json(cursor.to_json())
    assert resumed == cursor
    fourth, _ = window(hook, resumed, clock.at(30), "Modified")
    assert [e.ref for e in fourth.changed] == [b.ref]


def test_an_event_in_the_millisecond_where_the_overlap_starts_is_reported_once(
    preservica_conn: SandboxServer, clock: Clock
) -> None:
    """The next window asks from ``until - overlap`` in whole milliseconds (Preservica's precision): an event
    in that millisecond but microseconds before the exact instant is listed again and must still be skipped."""
    repo = preservica_conn.state.repository
    folder = repo.add_folder("Letters")
    b = repo.add_asset("b", folder.ref)
    hook = PreservicaHook()
    cursor = FeedCursor(T0 + timedelta(seconds=5), floor=T0 + timedelta(seconds=5))

    clock.at(10)
    repo.update(b.ref, title="b, retitled")  # dated 10.000
    until = T0 + timedelta(seconds=12, microseconds=500)  # the next overlap starts at 10.0005, asked as 10.000
    first, cursor = window(hook, cursor, until, "Modified", overlap=2.0)
    assert [e.ref for e in first.changed] == [b.ref]

    second, cursor = window(hook, cursor, clock.at(13), "Modified", overlap=2.0)  # lists b's event again
    assert not second  # ... and skips it by id
    resumed = FeedCursor.from_json(cursor.to_json())  # and so does a restart from the stored cursor
    assert resumed is not None
    third, _ = window(hook, resumed, clock.at(13.1), "Modified", overlap=2.0)
    assert not third


def test_a_collection_filter_and_deletions(preservica_conn: SandboxServer, clock: Clock) -> None:
    repo = preservica_conn.state.repository
    x, y = repo.add_folder("Collection X"), repo.add_folder("Collection Y")
    inside = [repo.add_asset(f"in {n}", x.ref).ref for n in range(3)]
    outside = repo.add_asset("out", y.ref).ref
    doomed = repo.add_asset("doomed", x.ref).ref
    clock.at(10)
    for ref in [*inside, outside]:
        repo.update(ref, description="described")
    repo.delete(doomed)
    hook = PreservicaHook()

    batch, _ = window(
        hook, FeedCursor(T0 + timedelta(seconds=5)), clock.at(20), "Modified", "Deleted", collection=x.ref
    )
    assert [e.ref for e in batch.changed] == inside
    assert [e.ref for e in batch.deleted] == [doomed]  # from the Deleted event; the feed says it is gone


def test_the_operator_reads_the_events_of_its_interval(preservica_conn: SandboxServer, clock: Clock) -> None:
    repo = preservica_conn.state.repository
    folder, other = repo.add_folder("Letters"), repo.add_folder("Elsewhere")
    a, b = repo.add_asset("a", folder.ref), repo.add_asset("b", folder.ref)
    clock.at(10)
    repo.update(a.ref, title="a, retitled")
    clock.at(11)
    repo.move(b.ref, other.ref)
    operator = PreservicaChangesOperator(
        task_id="changes",
        event_types=["moved"],
        since=(T0 + timedelta(seconds=5)).isoformat(),
        until=(T0 + timedelta(seconds=20)).isoformat(),
    )
    result = operator.execute({})
    assert result["refs"] == [b.ref] and result["event_types"] == ["Moved"] and result["events"] == 1
    assert result["entity_types"] == ["IO", "SO"] and result["count"] == 1


def test_changes_made_by_pypreservica_are_seen_through_the_event_filter(
    preservica_conn: SandboxServer, clock: Clock
) -> None:
    """pyPreservica 4.2.2 makes the changes; its ``all_events`` and our filter agree on each one's type."""
    repo = preservica_conn.state.repository
    preservica_conn.state.update_config({"entity_action_seconds": 0})
    folder, other = repo.add_folder("Letters"), repo.add_folder("Elsewhere")
    a, b, c = (repo.add_asset(name, folder.ref) for name in "abc")
    entity = pyPreservica.EntityAPI(
        username=ARCHIVIST.name, password=ARCHIVIST.password, server=preservica_conn.server, protocol="http"
    )
    clock.at(10)
    asset = entity.asset(a.ref)
    asset.title = "a, retitled by pyPreservica"
    entity.save(asset)
    clock.at(11)
    entity.add_identifier(entity.asset(c.ref), "code", "C-22")
    clock.at(12)
    entity.move_sync(entity.asset(b.ref), entity.folder(other.ref))
    clock.at(13)
    entity.security_tag_sync(entity.asset(c.ref), "closed")

    kinds = {e["Ref"]: e["eventType"] for e in entity.all_events()}
    assert list(kinds.values())[-4:] == ["Modified", "Modified", "Moved", "SecurityChanged"]
    hook = PreservicaHook()
    start = FeedCursor(T0 + timedelta(seconds=5))
    for types, expected in ((("Modified",), [a.ref, c.ref]), (("Moved",), [b.ref]), (("SecurityChanged",), [c.ref])):
        batch, _ = window(hook, start, clock.at(20), *types)
        assert [e.ref for e in batch.changed] == expected, types
