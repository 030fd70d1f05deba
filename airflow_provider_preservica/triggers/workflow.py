"""``PreservicaWorkflowTrigger``: waits in the triggerer for a Preservica workflow instance to finish.

The same shape as ``PreservicaProgressTrigger`` (JSON-only state, each poll in a worker thread, a few
transient read failures tolerated), reading ``/sdb/rest/workflow/instances/{id}`` instead of a progress token.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_preservica.exceptions import PreservicaError
from airflow_provider_preservica.hooks.preservica import (  # at import: run() must not block the loop
    PollErrors,
    PreservicaHook,
    WorkflowInstance,
)
from airflow_provider_preservica.task_errors import error_event
from airflow_provider_preservica.triggers.progress import in_worker_thread


class PreservicaWorkflowTrigger(BaseTrigger):
    def __init__(self, *, preservica_conn_id: str, instance_id: str, poll_interval: float, end_time: float) -> None:
        super().__init__()
        self.preservica_conn_id = preservica_conn_id
        self.instance_id = str(instance_id)
        self.poll_interval = poll_interval
        self.end_time = end_time

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "airflow_provider_preservica.triggers.workflow.PreservicaWorkflowTrigger",
            {
                "preservica_conn_id": self.preservica_conn_id,
                "instance_id": self.instance_id,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
            },
        )

    def _poll(self, hook: Any) -> WorkflowInstance:
        return hook.workflow_instance(self.instance_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = PreservicaHook(self.preservica_conn_id)
        last_state = ""
        errors = PollErrors()
        while True:
            try:
                instance = await in_worker_thread(self._poll, hook)
            except Exception as exc:
                tolerated = isinstance(exc, PreservicaError) and errors.tolerate(exc, f"workflow {self.instance_id}")
                if tolerated and time.time() + self.poll_interval <= self.end_time:
                    await asyncio.sleep(self.poll_interval)
                    continue
                yield TriggerEvent(error_event(exc, instance_id=self.instance_id))
                return
            errors.reset()
            if instance.state != last_state:
                self.log.info("Preservica workflow instance %s: %s", self.instance_id, instance.state)
                last_state = instance.state
            if instance.finished_running:
                yield TriggerEvent({"status": "finished", "instance_id": self.instance_id, "state": instance.state})
                return
            if time.time() + self.poll_interval > self.end_time:
                yield TriggerEvent(
                    {
                        "status": "timeout",
                        "instance_id": self.instance_id,
                        "state": instance.state,
                        "message": f"Preservica workflow instance {self.instance_id} still {instance.state} at the "
                        "deadline; look it up in Preservica's Workflows screen",
                    }
                )
                return
            await asyncio.sleep(self.poll_interval)
