"""``PreservicaProgressTokensTrigger``: waits in the triggerer for a list of progress tokens to finish.

``PreservicaProgressTrigger`` is the same trigger over one token, with the events of one token (kept so that
deferrals of earlier releases, serialised under its name, still load). The trigger holds only JSON values
(connection id, tokens, times) and makes the decision every wait makes (``client.progress.look``). Each poll
runs the synchronous client in a worker thread, so the triggerer's event loop never blocks; the hook and its
token cache are shared by all polls of this trigger.

The worker thread comes from asgiref's ``sync_to_async``, not ``asyncio.to_thread``: the poll reads the
Connection and the token Variable through the triggerer's comms channel, and on Airflow 3.1 only a thread
that asgiref started finds its way back to the triggerer's event loop. From a plain thread, 3.1's
``TriggerCommsDecoder.send`` starts an event loop of its own, two polls then read the one channel at once,
and the trigger runner dies with "Response read out of order!". 3.2 and later accept either thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from airflow.triggers.base import BaseTrigger, TriggerEvent
from asgiref.sync import sync_to_async

from airflow_provider_preservica.exceptions import PreservicaError
from airflow_provider_preservica.hooks.preservica import (  # at import: run() must not block the loop
    PollErrors,
    PreservicaHook,
    Progress,
    look,
    status_line,
)
from airflow_provider_preservica.task_errors import error_event

T = TypeVar("T")


async def in_worker_thread(function: Callable[..., T], *args: Any) -> T:
    """Run blocking ``function(*args)`` in a worker thread of its own (polls of several triggers overlap)."""
    return await sync_to_async(function, thread_sensitive=False)(*args)


class PreservicaProgressTokensTrigger(BaseTrigger):
    """Waits for many progress tokens at once (a delivery's packages, a metadata run's security tag changes
    and moves, a deletion's requests); one token is a list of one.

    Each poll reads the unfinished tokens in a worker thread. The event carries every finished token's
    status and errors, ``results: {token: [status, [error, ...]]}``, also with a timeout or an error event, so
    that the operator can report what did finish.

    ``stop_at_pending``: tokens whose ``PENDING`` also ends their wait, reported like a finished token (a
    deletion request waiting for the manager's approval): the event comes at once, with the other tokens
    still running left out of ``results``; the worker approves, then defers again for the rest.

    ``carry``: JSON handed back unchanged in every event: the deferring task's own state. The method the task
    resumes in must not count on the ``kwargs`` of ``defer()``: ``dag.test()`` replaces them with the event.
    """

    def __init__(
        self,
        *,
        preservica_conn_id: str,
        progress_tokens: list[str],
        poll_interval: float,
        end_time: float,
        what: str = "metadata change",
        stop_at_pending: list[str] | None = None,
        carry: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.preservica_conn_id = preservica_conn_id
        self.progress_tokens = list(progress_tokens)
        self.poll_interval = poll_interval
        self.end_time = end_time
        self.what = what
        self.stop_at_pending = list(stop_at_pending or [])
        self.carry = carry

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "airflow_provider_preservica.triggers.progress.PreservicaProgressTokensTrigger",
            {
                "preservica_conn_id": self.preservica_conn_id,
                "progress_tokens": self.progress_tokens,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
                "what": self.what,
                "stop_at_pending": self.stop_at_pending,
                "carry": self.carry,
            },
        )

    # -- the events: one token's trigger (below) says the same in its own words ----------------------------
    def _event(self, payload: dict[str, Any]) -> TriggerEvent:
        return TriggerEvent({**payload, "carry": self.carry} if self.carry is not None else payload)

    def finished_event(self, results: dict[str, list[Any]]) -> TriggerEvent:
        return self._event({"status": "finished", "results": results})

    def timeout_event(self, results: dict[str, list[Any]], waiting: list[str], last: dict[str, str]) -> TriggerEvent:
        return self._event(
            {
                "status": "timeout",
                "results": results,
                "message": f"{len(waiting)} Preservica {self.what} task(s) still running at the deadline "
                f"(first progress token {waiting[0]}); look them up in Preservica's Process Monitor",
            }
        )

    def error_event(self, exc: BaseException, token: str | None, results: dict[str, list[Any]]) -> TriggerEvent:
        event = error_event(exc, results=results)
        return self._event({**event, "message": f"progress token {token}: {exc}"} if token else event)

    def log_progress(self, seen: dict[str, Progress], last: dict[str, str], finished: list[str]) -> None:
        for token in finished:
            self.log.info("Preservica %s %s: %s", self.what, token, seen[token].status)

    def log_waiting(self, finished: int, waiting: int) -> None:
        self.log.info("Preservica %s: %d of %d finished", self.what, finished, finished + waiting)

    # -- the wait ---------------------------------------------------------------------------------------------
    @staticmethod
    def _look(
        hook: Any, tokens: list[str], errors: dict[str, PollErrors]
    ) -> tuple[dict[str, Progress], tuple[str, PreservicaError] | None]:
        return look(hook.progress, tokens, errors)  # reads the Connection and the token: not on the event loop

    def _time_left(self) -> bool:
        return time.time() + self.poll_interval <= self.end_time

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = PreservicaHook(self.preservica_conn_id)
        waiting = list(dict.fromkeys(self.progress_tokens))
        results: dict[str, list[Any]] = {}
        last: dict[str, str] = {}
        errors: dict[str, PollErrors] = {}
        logins = PollErrors()  # the poll as a whole (the Connection, a login) may fail transiently too
        while True:
            try:
                seen, failure = await in_worker_thread(self._look, hook, waiting, errors)
            except Exception as exc:
                if isinstance(exc, PreservicaError) and logins.tolerate(exc, waiting[0]) and self._time_left():
                    await asyncio.sleep(self.poll_interval)
                    continue
                yield self.error_event(exc, None, results)
                return
            logins.reset()
            if failure is not None:
                yield self.error_event(failure[1], failure[0], results)
                return
            ended = []
            for token, progress in seen.items():
                if progress.finished or (progress.status == "PENDING" and token in self.stop_at_pending):
                    results[token] = [progress.status, progress.errors]
                    ended.append(token)
            self.log_progress(seen, last, ended)
            last.update({token: progress.status for token, progress in seen.items()})
            waiting = [t for t in waiting if t not in results]
            awaiting_approval = any(results[t][0] == "PENDING" for t in self.stop_at_pending if t in results)
            if not waiting or awaiting_approval:  # an approval waits for no other token
                yield self.finished_event(results)
                return
            self.log_waiting(len(results), len(waiting))
            if not self._time_left():
                yield self.timeout_event(results, waiting, last)
                return
            await asyncio.sleep(self.poll_interval)


class PreservicaProgressTrigger(PreservicaProgressTokensTrigger):
    """The tokens trigger over one token, with one token's events: ``{"status": "finished", "progress_token",
    "remote_status"}``, ``"timeout"`` (with ``remote_status`` and a ``message``) or ``"error"``; every status
    change is logged. Serialised under its own name and arguments, as earlier releases stored it."""

    def __init__(
        self,
        *,
        preservica_conn_id: str,
        progress_token: str,
        poll_interval: float,
        end_time: float,
        what: str = "ingest",
    ) -> None:
        super().__init__(
            preservica_conn_id=preservica_conn_id,
            progress_tokens=[progress_token],
            poll_interval=poll_interval,
            end_time=end_time,
            what=what,
        )
        self.progress_token = progress_token

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "airflow_provider_preservica.triggers.progress.PreservicaProgressTrigger",
            {
                "preservica_conn_id": self.preservica_conn_id,
                "progress_token": self.progress_token,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
                "what": self.what,
            },
        )

    def finished_event(self, results: dict[str, list[Any]]) -> TriggerEvent:
        status = results[self.progress_token][0]
        return TriggerEvent({"status": "finished", "progress_token": self.progress_token, "remote_status": status})

    def timeout_event(self, results: dict[str, list[Any]], waiting: list[str], last: dict[str, str]) -> TriggerEvent:
        status = last.get(self.progress_token, "unknown")
        return TriggerEvent(
            {
                "status": "timeout",
                "progress_token": self.progress_token,
                "remote_status": status,
                "message": f"Preservica {self.what} with progress token {self.progress_token} still "
                f"{status} at the deadline; look it up in Preservica's Process Monitor",
            }
        )

    def error_event(self, exc: BaseException, token: str | None, results: dict[str, list[Any]]) -> TriggerEvent:
        return TriggerEvent(error_event(exc, progress_token=self.progress_token))

    def log_progress(self, seen: dict[str, Progress], last: dict[str, str], finished: list[str]) -> None:
        for token, progress in seen.items():
            if progress.status != last.get(token):
                self.log.info("%s", status_line(self.what, progress))

    def log_waiting(self, finished: int, waiting: int) -> None:
        pass  # one token: its status changes say it all
