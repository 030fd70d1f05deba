"""``PreservicaProgressTrigger``: waits in the triggerer for a progress token to finish.

The trigger holds only JSON values (connection id, token, times). Each poll runs the synchronous
client in a worker thread (``asyncio.to_thread``), so the triggerer's event loop never blocks; the
hook and its token cache are shared by all polls of this trigger.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_preservica.client.progress import PollErrors, Progress, read_progress
from airflow_provider_preservica.exceptions import PreservicaError
from airflow_provider_preservica.hooks.preservica import PreservicaHook  # at import: run() must not block the loop


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
        return read_progress(hook.get_conn(), self.progress_token)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = PreservicaHook(self.preservica_conn_id)
        last_status = ""
        errors = PollErrors()
        while True:
            try:
                progress = await asyncio.to_thread(self._poll, hook)
            except PreservicaError as exc:
                if errors.tolerate(exc, self.progress_token) and time.time() + self.poll_interval <= self.end_time:
                    await asyncio.sleep(self.poll_interval)
                    continue
                yield TriggerEvent(
                    {
                        "status": "error",
                        "progress_token": self.progress_token,
                        "message": f"{type(exc).__name__}: {exc}",
                    }
                )
                return
            except Exception as exc:
                yield TriggerEvent(
                    {
                        "status": "error",
                        "progress_token": self.progress_token,
                        "message": f"{type(exc).__name__}: {exc}",
                    }
                )
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
