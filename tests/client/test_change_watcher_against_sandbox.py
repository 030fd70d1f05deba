"""``PreservicaChangesTrigger`` against the sandbox: its async generator is run directly, as the triggerer
runs it. Changes go through the provider's own API calls; waits are on conditions (events, polls, the
stored cursor), never on timings. Each guarantee is checked on both feeds: the changed-entities feed
(no event filter) and the entity events (``event_types``)."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from preservica_sandbox import SandboxServer

from airflow_provider_preservica.changes.cursor_store import MemoryCursorStore
from airflow_provider_preservica.changes.window import FeedCursor
from airflow_provider_preservica.exceptions import PreservicaConfigError
from airflow_provider_preservica.hooks.preservica import PreservicaHook
from airflow_provider_preservica.triggers.changes import PreservicaChangesTrigger

HANG = 60.0  # only against a hang: every wait below ends on a condition


def run_async(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test in its own event loop (the suite has no asyncio plugin)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


class Watch:
    """Runs a trigger's generator in a task, collecting its events and counting its polls."""

    def __init__(self, trigger: PreservicaChangesTrigger) -> None:
        self.trigger = trigger
        self.events: list[dict[str, Any]] = []
        self.polls = 0
        poll = trigger._poll

        def counted(*args: Any) -> Any:
            try:
                return poll(*args)
            finally:
                self.polls += 1

        trigger._poll = counted  # type: ignore[method-assign,assignment]
        self.task: asyncio.Task[None] | None = None

    async def _consume(self) -> None:
        async for event in self.trigger.run():
            self.events.append(event.payload)

    def start(self) -> Watch:
        self.task = asyncio.create_task(self._consume())
        return self

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        async def wait() -> None:
            while not condition():
                if self.task is not None and self.task.done():
                    self.task.result()  # raise what stopped the trigger
                    raise AssertionError(f"the trigger ended before {what}")
                await asyncio.sleep(0.01)

        await asyncio.wait_for(wait(), HANG)

    async def stop(self) -> None:
        """Kill it as a triggerer restart does: cancel the task, no goodbye."""
        assert self.task is not None
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task


def make_trigger(collection: str, **overrides: Any) -> PreservicaChangesTrigger:
    kwargs: dict[str, Any] = {
        "collection": collection,
        "entity_types": ["IO"],
        "poll_interval": 0.02,
        "lag": 0,
        "overlap": 0.2,
        "cursor_variable": f"cursor-{uuid.uuid4()}",
        **overrides,
    }
    return PreservicaChangesTrigger(**kwargs)


def restarted(trigger: PreservicaChangesTrigger) -> PreservicaChangesTrigger:
    """A new instance from the serialized form, as the triggerer builds one after a restart."""
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_preservica.triggers.changes.PreservicaChangesTrigger"
    return PreservicaChangesTrigger(**kwargs)


def stored(trigger: PreservicaChangesTrigger) -> FeedCursor | None:
    return FeedCursor.from_json(MemoryCursorStore._values.get(trigger.cursor_variable or ""))


@pytest.fixture(params=[None, ["Modified"]], ids=["updated-since", "events"])
def event_types(request: pytest.FixtureRequest) -> list[str] | None:
    """The two feeds a watcher reads: every change, or the entity events of the types asked for."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def collections(preservica_conn: SandboxServer) -> dict[str, str]:
    repo = preservica_conn.state.repository
    repo.clear()
    x = repo.add_folder("Collection X")
    series = repo.add_folder("Series", parent=x.ref)
    y = repo.add_folder("Collection Y")
    return {
        "x": x.ref,
        "a": repo.add_asset("a", series.ref).ref,
        "b": repo.add_asset("b", x.ref).ref,
        "y": y.ref,
        "c": repo.add_asset("c", y.ref).ref,
    }


def retitle(ref: str, title: str) -> None:
    hook = PreservicaHook()
    hook.entities.update_text(hook.entities.get(ref, "IO"), title=title)


def requests_made(server: SandboxServer) -> int:
    counts = server.state.stats()["requests"]
    return sum(n for route, n in counts.items() if "accesstoken" not in route)


@run_async
async def test_a_change_yields_exactly_one_event_with_the_changed_refs_of_the_collection(
    preservica_conn: SandboxServer, collections: dict[str, str], event_types: list[str] | None
) -> None:
    watch = Watch(make_trigger(collections["x"], event_types=event_types)).start()
    await watch.until(lambda: watch.polls >= 1, "the first poll")
    await asyncio.to_thread(retitle, collections["a"], "a, retitled")
    await asyncio.to_thread(retitle, collections["c"], "c, outside X")
    await watch.until(lambda: bool(watch.events), "an event")
    polls = watch.polls
    await watch.until(lambda: watch.polls >= polls + 20, "twenty more polls")
    await watch.stop()

    assert len(watch.events) == 1
    (event,) = watch.events
    assert event["refs"] == [collections["a"]] and event["types"] == {collections["a"]: "IO"}
    assert event["collection"] == collections["x"] and event["entity_types"] == ["IO"]
    assert event["event_types"] == event_types and (event["events"] > 0) == bool(event_types)
    assert event["since"] < event["until"] and event["count"] == 1 and event["truncated"] is False


@run_async
async def test_a_quiet_feed_yields_nothing_and_costs_one_request_a_poll(
    preservica_conn: SandboxServer, collections: dict[str, str], event_types: list[str] | None
) -> None:
    watch = Watch(make_trigger(collections["x"], event_types=event_types)).start()
    await watch.until(lambda: watch.polls >= 1, "the first poll")
    before, polls = requests_made(preservica_conn), watch.polls
    await watch.until(lambda: watch.polls >= polls + 10, "ten quiet polls")
    await watch.stop()
    assert watch.events == []
    assert requests_made(preservica_conn) - before == watch.polls - polls


@run_async
async def test_a_restart_before_the_event_settled_announces_it_again_with_what_changed_meanwhile(
    preservica_conn: SandboxServer, collections: dict[str, str], event_types: list[str] | None
) -> None:
    first = make_trigger(collections["x"], settle_seconds=3600, event_types=event_types)
    watch = Watch(first).start()
    await watch.until(lambda: watch.polls >= 1, "the first poll")
    await asyncio.to_thread(retitle, collections["a"], "a, retitled")
    await watch.until(lambda: bool(watch.events), "the event for a")
    polls = watch.polls
    await watch.until(lambda: watch.polls >= polls + 3, "three more polls")  # it had every chance to save
    await watch.stop()  # the triggerer dies: the event may never have reached the database

    await asyncio.to_thread(retitle, collections["b"], "b, retitled while no one watched")
    again = Watch(restarted(first)).start()

    def announced() -> set[str]:
        return {ref for event in again.events for ref in event["refs"]}

    # a again (at least once) and b; in one event or two: whether b's change falls in the restarted watcher's
    # first window or its next depends on when that first poll runs, which the test does not fix.
    wanted = {collections["a"], collections["b"]}
    await again.until(lambda: wanted <= announced(), "the events after the restart")
    await again.stop()
    assert announced() == wanted


@run_async
async def test_a_restart_after_the_event_settled_loses_nothing_and_replays_nothing(
    preservica_conn: SandboxServer, collections: dict[str, str], event_types: list[str] | None
) -> None:
    first = make_trigger(collections["x"], settle_seconds=0, event_types=event_types)
    watch = Watch(first).start()
    await watch.until(lambda: watch.polls >= 1, "the first poll")
    await asyncio.to_thread(retitle, collections["a"], "a, retitled")
    await watch.until(lambda: bool(watch.events), "the event for a")
    until = watch.events[0]["until"]
    await watch.until(
        lambda: (cursor := stored(first)) is not None and cursor.to_json()["since"] >= until, "the cursor saved"
    )
    await watch.stop()

    await asyncio.to_thread(retitle, collections["b"], "b, retitled while no one watched")
    again = Watch(restarted(first)).start()
    await again.until(lambda: bool(again.events), "the event after the restart")
    polls = again.polls
    await again.until(lambda: again.polls >= polls + 20, "twenty more polls")
    await again.stop()
    assert [e["refs"] for e in again.events] == [[collections["b"]]]


def test_bad_watcher_arguments_fail_when_the_dag_is_parsed() -> None:
    with pytest.raises(PreservicaConfigError, match=r"SO \(folders\), IO \(assets\)"):
        PreservicaChangesTrigger(entity_types=["asset"])
    with pytest.raises(PreservicaConfigError, match="2024-05-01T12:00:00Z"):
        PreservicaChangesTrigger(since="yesterday")
    with pytest.raises(PreservicaConfigError, match="poll_interval"):
        PreservicaChangesTrigger(poll_interval=0)
    with pytest.raises(PreservicaConfigError, match="event_types must name some of Ingest, Create, Modified"):
        PreservicaChangesTrigger(event_types=["Ingested"])


@run_async
async def test_an_event_type_not_asked_for_yields_nothing(
    preservica_conn: SandboxServer, collections: dict[str, str]
) -> None:
    repo = preservica_conn.state.repository
    watch = Watch(make_trigger(collections["x"], event_types=["Moved", "security changed"])).start()
    assert watch.trigger.event_types == ["Moved", "SecurityChanged"]  # Preservica's names, whatever the spelling
    await watch.until(lambda: watch.polls >= 1, "the first poll")
    await asyncio.to_thread(retitle, collections["a"], "a, retitled")  # Modified: not asked for
    polls = watch.polls
    await watch.until(lambda: watch.polls >= polls + 10, "ten polls after the retitle")
    assert watch.events == []
    await asyncio.to_thread(repo.move, collections["c"], collections["x"])  # Moved into X
    await watch.until(lambda: bool(watch.events), "the event for the move")
    polls = watch.polls
    await watch.until(lambda: watch.polls >= polls + 10, "ten more polls")
    await watch.stop()
    [event] = watch.events
    assert event["refs"] == [collections["c"]] and event["event_types"] == ["Moved", "SecurityChanged"]
    assert event["events"] == 1
