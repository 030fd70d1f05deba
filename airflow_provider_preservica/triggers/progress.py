"""``PreservicaProgressTrigger``: waits in the triggerer for a progress token to finish.

The trigger holds only JSON values (connection id, token, times). Each poll runs the synchronous
client in a worker thread, so the triggerer's event loop never blocks; the hook and its token cache are
shared by all polls of this trigger.

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
)
from airflow_provider_preservica.task_errors import error_event

T = TypeVar("T")


async def in_worker_thread(function: Callable[..., T], *args: Any) -> T:
    """Run blocking ``function(*args)`` in a worker thread of its own (polls of several triggers overlap)."""
    return await sync_to_async(function, thread_sensitive=False)(*args)


class PreservicaProgressTrigger(BaseTrigger):
    def __init__(
        self,
        *,
        preservica_conn_id: str,
        progress_token: str,
        poll_interval: float,
        end_time: float,
        what: str = "ingest",
    ) -> None:
        super().__init__()
        self.preservica_conn_id = preservica_conn_id
        self.progress_token = progress_token
        self.poll_interval = poll_interval
        self.end_time = end_time
        self.what = what

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

    def _poll(self, hook: Any) -> Progress:
        return hook.progress(self.progress_token)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = PreservicaHook(self.preservica_conn_id)
        last_status = ""
        errors = PollErrors()
        while True:
            try:
                progress = await in_worker_thread(self._poll, hook)
            except Exception as exc:
                tolerated = isinstance(exc, PreservicaError) and errors.tolerate(exc, self.progress_token)
                if tolerated and time.time() + self.poll_interval <= self.end_time:
                    await asyncio.sleep(self.poll_interval)
                    continue
                yield TriggerEvent(error_event(exc, progress_token=self.progress_token))
                return
            errors.reset()
            if progress.status != last_status:
                self.log.info("Preservica %s %s: %s", self.what, self.progress_token, progress.status)
                last_status = progress.status
            if progress.finished:
                yield TriggerEvent(
                    {"status": "finished", "progress_token": self.progress_token, "remote_status": progress.status}
                )
                return
            if time.time() + self.poll_interval > self.end_time:
                yield TriggerEvent(
                    {
                        "status": "timeout",
                        "progress_token": self.progress_token,
                        "remote_status": progress.status,
                        "message": f"Preservica {self.what} with progress token {self.progress_token} still "
                        f"{progress.status} at the deadline; look it up in Preservica's Process Monitor",
                    }
                )
                return
            await asyncio.sleep(self.poll_interval)


class PreservicaProgressTokensTrigger(BaseTrigger):
    """Waits for many progress tokens at once (a metadata run's security tag changes and moves).

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

    def _event(self, payload: dict[str, Any]) -> TriggerEvent:
        return TriggerEvent({**payload, "carry": self.carry} if self.carry is not None else payload)

    @staticmethod
    def _poll_all(hook: Any, tokens: list[str]) -> dict[str, Progress | PreservicaError]:
        return hook.progress_many(tokens)  # reads the Connection (get_conn()): not on the event loop

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = PreservicaHook(self.preservica_conn_id)
        waiting = list(dict.fromkeys(self.progress_tokens))
        results: dict[str, list[Any]] = {}
        errors = {token: PollErrors() for token in waiting}
        while True:
            try:
                seen = await in_worker_thread(self._poll_all, hook, waiting)
            except Exception as exc:
                yield self._event(error_event(exc, results=results))
                return
            for token, progress in seen.items():
                if isinstance(progress, PreservicaError):
                    if errors[token].tolerate(progress, token) and time.time() + self.poll_interval <= self.end_time:
                        continue
                    event = error_event(progress, results=results)
                    yield self._event({**event, "message": f"progress token {token}: {progress}"})
                    return
                errors[token].reset()
                if progress.finished or (progress.status == "PENDING" and token in self.stop_at_pending):
                    results[token] = [progress.status, progress.errors]
                    self.log.info("Preservica %s %s: %s", self.what, token, progress.status)
            waiting = [t for t in waiting if t not in results]
            awaiting_approval = any(results[t][0] == "PENDING" for t in self.stop_at_pending if t in results)
            if not waiting or awaiting_approval:  # an approval waits for no other token
                yield self._event({"status": "finished", "results": results})
                return
            self.log.info("Preservica %s: %d of %d finished", self.what, len(results), len(results) + len(waiting))
            if time.time() + self.poll_interval > self.end_time:
                yield self._event(
                    {
                        "status": "timeout",
                        "results": results,
                        "message": f"{len(waiting)} Preservica {self.what} task(s) still running at the deadline "
                        f"(first progress token {waiting[0]}); look them up in Preservica's Process Monitor",
                    }
                )
                return
            await asyncio.sleep(self.poll_interval)
