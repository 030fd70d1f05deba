"""One wait over a list of progress tokens: in the worker (``wait_for_all``, ``wait_for_progress`` its one-token
form), in the triggerer (``PreservicaProgressTokensTrigger``, ``PreservicaProgressTrigger`` its one-token form)
and the sensor's poke make the same decision (``client.progress.look``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from airflow_provider_preservica.client import progress as progress_module
from airflow_provider_preservica.client.progress import PollErrors, Progress, look, wait_for_all, wait_for_progress
from airflow_provider_preservica.exceptions import PreservicaHTTPError, ProgressTimeoutError, ProgressTokenUnknownError
from airflow_provider_preservica.triggers import progress as triggers


def server_error() -> PreservicaHTTPError:
    return PreservicaHTTPError(503, "GET", "/api/entity/progress/t")


class Script:
    """What Preservica says of each token, one answer per read (the last answer repeats)."""

    def __init__(self, **answers: list[Any]) -> None:
        self.answers = answers
        self.reads: list[str] = []

    def __call__(self, token: str) -> Progress:
        self.reads.append(token)
        queue = self.answers[token]
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        return Progress(token, answer, 50.0 if answer == "ACTIVE" else None)


def test_a_poll_waits_out_a_few_server_faults_and_ends_at_the_fifth() -> None:
    read = Script(t=[server_error()] * 5 + ["COMPLETED"])
    errors: dict[str, PollErrors] = {}
    for _ in range(4):
        assert look(read, ["t"], errors) == ({}, None)
    seen, failure = look(read, ["t"], errors)
    assert seen == {} and failure is not None and failure[0] == "t"


def test_an_unknown_token_ends_the_wait_at_once() -> None:
    read = Script(t=[ProgressTokenUnknownError("no such token")], u=["ACTIVE"])
    seen, failure = look(read, ["u", "t"], {})
    assert seen == {"u": Progress("u", "ACTIVE", 50.0)} and failure is not None and failure[0] == "t"


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> Any:
    def install(script: Script) -> Script:
        monkeypatch.setattr(progress_module, "read_progress", lambda client, token: script(token))
        monkeypatch.setattr(progress_module.time, "sleep", lambda seconds: None)
        return script

    return install


def test_one_token_is_a_list_of_one(scripted: Any, caplog: pytest.LogCaptureFixture) -> None:
    scripted(Script(t=["ACTIVE", server_error(), "ACTIVE", "COMPLETED"]))
    caplog.set_level("INFO", logger="airflow_provider_preservica")
    progress = wait_for_progress(object(), "t", poll_interval=0, timeout=60, what="export")  # type: ignore[arg-type]
    assert progress == Progress("t", "COMPLETED")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Preservica export")]
    assert lines == ["Preservica export t: ACTIVE (50%)", "Preservica export t: COMPLETED"]


def test_several_tokens_wait_until_each_has_finished(scripted: Any) -> None:
    scripted(Script(a=["ACTIVE", "COMPLETED"], b=["ACTIVE", "ACTIVE", "FAILED"]))
    finished = wait_for_all(object(), ["a", "b", "a"], poll_interval=0, timeout=60, what="ingest")  # type: ignore[arg-type]
    assert {t: p.status for t, p in finished.items()} == {"a": "COMPLETED", "b": "FAILED"}


def test_a_timeout_names_the_token_and_its_last_status(scripted: Any) -> None:
    scripted(Script(t=["ACTIVE"]))
    with pytest.raises(ProgressTimeoutError, match=r"export with progress token t still ACTIVE after 0 s"):
        wait_for_progress(object(), "t", poll_interval=1, timeout=0, what="export")  # type: ignore[arg-type]
    scripted(Script(a=["COMPLETED"], b=["ACTIVE"]))
    with pytest.raises(ProgressTimeoutError, match=r"1 Preservica ingest task\(s\) still running .* token b\)"):
        wait_for_all(object(), ["a", "b"], poll_interval=1, timeout=0, what="ingest")  # type: ignore[arg-type]


class FakeHook:
    script: Script

    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id

    def progress(self, token: str) -> Progress:
        return self.script(token)


def events(trigger: Any, script: Script, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    FakeHook.script = script
    monkeypatch.setattr(triggers, "PreservicaHook", FakeHook)

    async def collect() -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(collect())


def test_the_one_token_trigger_is_the_tokens_trigger_with_one_tokens_events(monkeypatch: pytest.MonkeyPatch) -> None:
    one = triggers.PreservicaProgressTrigger(
        preservica_conn_id="c", progress_token="t", poll_interval=0, end_time=1e12, what="export"
    )
    assert isinstance(one, triggers.PreservicaProgressTokensTrigger)
    assert events(one, Script(t=["ACTIVE", server_error(), "COMPLETED"]), monkeypatch) == [
        {"status": "finished", "progress_token": "t", "remote_status": "COMPLETED"}
    ]
    many = triggers.PreservicaProgressTokensTrigger(
        preservica_conn_id="c", progress_tokens=["t", "u"], poll_interval=0, end_time=1e12, carry={"n": 1}
    )
    assert events(many, Script(t=["ACTIVE", "COMPLETED"], u=["FAILED"]), monkeypatch) == [
        {"status": "finished", "results": {"u": ["FAILED", []], "t": ["COMPLETED", []]}, "carry": {"n": 1}}
    ]


def test_the_one_token_trigger_times_out_and_fails_with_one_tokens_events(monkeypatch: pytest.MonkeyPatch) -> None:
    def one(end_time: float) -> Any:
        return triggers.PreservicaProgressTrigger(
            preservica_conn_id="c", progress_token="t", poll_interval=1, end_time=end_time, what="export"
        )

    [timeout] = events(one(0), Script(t=["ACTIVE"]), monkeypatch)
    assert (timeout["status"], timeout["progress_token"], timeout["remote_status"]) == ("timeout", "t", "ACTIVE")
    [error] = events(one(1e12), Script(t=[ProgressTokenUnknownError("gone")]), monkeypatch)
    assert error == {
        "status": "error",
        "progress_token": "t",
        "message": "ProgressTokenUnknownError: gone",
        "retryable": True,
    }


def test_a_deferral_stored_by_an_earlier_release_still_loads() -> None:
    """A trigger row holds the class path and the arguments that ``serialize()`` gave when the task deferred."""
    import importlib

    row = (
        "airflow_provider_preservica.triggers.progress.PreservicaProgressTrigger",
        {"preservica_conn_id": "c", "progress_token": "t", "poll_interval": 15.0, "end_time": 2e9, "what": "export"},
    )
    module, name = row[0].rsplit(".", 1)
    trigger = getattr(importlib.import_module(module), name)(**row[1])
    assert trigger.serialize() == row and trigger.progress_tokens == ["t"]
