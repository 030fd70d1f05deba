"""``PreservicaProgressSensor``: wait for a progress token that was started elsewhere."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_preservica.compat import AirflowFailException, conf
from airflow_provider_preservica.hooks.preservica import PollErrors, PreservicaHook, look
from airflow_provider_preservica.task_errors import event_error, task_errors
from airflow_provider_preservica.triggers.progress import PreservicaProgressTrigger


class PreservicaProgressSensor(BaseSensorOperator):
    """Succeeds when Preservica reports the token ``COMPLETED``; fails on a failed, aborted or mixed outcome.

    :param progress_token: e.g. ``{{ ti.xcom_pull(task_ids='ingest', key='progress_token') }}``.
    """

    template_fields: Sequence[str] = ("progress_token", "preservica_conn_id")

    def __init__(
        self,
        *,
        progress_token: str,
        preservica_conn_id: str = PreservicaHook.default_conn_name,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.progress_token = progress_token
        self.preservica_conn_id = preservica_conn_id
        self.deferrable = deferrable

    @task_errors
    def poke(self, context: Any) -> PokeReturnValue | bool:
        errors: dict[str, PollErrors] | None = getattr(self, "_poll_errors", None)
        if errors is None:  # one per try: a few server hiccups in a row are waited out
            errors = {}
            self._poll_errors = errors
        hook = PreservicaHook(self.preservica_conn_id)
        seen, failure = look(hook.progress, [self.progress_token], errors)  # the decision of every wait
        if failure is not None:
            raise failure[1]
        if self.progress_token not in seen:
            return False
        progress = seen[self.progress_token]
        self.log.info("Progress token %s: %s", self.progress_token, progress.status)
        if not progress.finished:
            return False
        if not progress.succeeded:
            details = "; ".join(progress.errors) or "no error details returned"
            raise AirflowFailException(f"Preservica reports {progress.status} for {self.progress_token}: {details}")
        return PokeReturnValue(
            is_done=True, xcom_value={"progress_token": self.progress_token, "state": progress.status}
        )

    def execute(self, context: Any) -> Any:
        if not self.deferrable:
            return super().execute(context)
        result = self.poke(context)
        if isinstance(result, PokeReturnValue) and result.is_done:
            return result.xcom_value
        timeout = float(self.timeout) if self.timeout else 7 * 24 * 3600.0
        self.defer(
            trigger=PreservicaProgressTrigger(
                preservica_conn_id=self.preservica_conn_id,
                progress_token=self.progress_token,
                poll_interval=float(self.poke_interval),
                end_time=time.time() + timeout,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        event = event or {}
        message = event.get("message") or f"waiting for {self.progress_token} failed: {event}"
        if event.get("status") == "timeout":
            raise AirflowFailException(message)  # a sensor's timeout is not retried
        if event.get("status") != "finished":
            raise event_error(event, message)  # a server fault keeps its retries, a refused login has none
        result = self.poke(context)
        if isinstance(result, PokeReturnValue) and result.is_done:
            return dict(result.xcom_value or {})
        raise AirflowFailException(f"{self.progress_token} is still running after the trigger said it finished")
