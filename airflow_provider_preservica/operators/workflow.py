"""``PreservicaWorkflowOperator``: start a Preservica workflow context by name or id, wait for it, report."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_preservica.compat import AirflowException, AirflowFailException, conf
from airflow_provider_preservica.exceptions import PreservicaError, WorkflowInstanceUnknownError
from airflow_provider_preservica.hooks.preservica import PreservicaHook, WorkflowInstance
from airflow_provider_preservica.links import PreservicaWorkflowLink, workflow_url
from airflow_provider_preservica.operators.base import PreservicaBaseOperator
from airflow_provider_preservica.task_errors import task_errors
from airflow_provider_preservica.triggers.workflow import PreservicaWorkflowTrigger


class PreservicaWorkflowOperator(PreservicaBaseOperator):
    """Start an instance of the workflow context ``context`` (its name as Preservica shows it, or its id).

    ``parameters`` become the start request's ``Parameter`` key/value pairs (for "Ingest OPEX (Incremental)":
    ``{"OpexContainerDirectory": "opex/<container>"}``); a parameter whose value renders empty is left out, so a
    template can make one optional. The instance id goes to XCom (``workflow_instance_id``)
    and the task's "Preservica workflow" link at once; then the task waits in the worker or, with
    ``deferrable``, in the triggerer. A retry takes over the instance the earlier try started (one start per
    task run). An instance that ends other than ``Completed`` fails the task with Preservica's errors.

    :param workflow_type: ``Ingest``, ``Access``, ``Transformation`` or ``DataManagement``, to look the
        name up among that type's contexts only.
    :returns: ``{"instance_id", "context_id", "context_name", "state", "started", "finished", "errors"}``.
    """

    template_fields: Sequence[str] = ("context", "parameters", "correlation_id", "preservica_conn_id")
    operator_extra_links = (PreservicaWorkflowLink(),)
    job_kind = "workflow"
    link_kind = "workflow"

    def __init__(
        self,
        *,
        context: str,
        parameters: Mapping[str, Any] | None = None,
        workflow_type: str | None = None,
        correlation_id: str | None = None,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 15.0,
        timeout: float = 6 * 3600.0,
        preservica_conn_id: str = PreservicaHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            deferrable=deferrable,
            poll_interval=poll_interval,
            timeout=timeout,
            preservica_conn_id=preservica_conn_id,
            **kwargs,
        )
        self.context = context
        self.parameters = dict(parameters or {})
        self.workflow_type = workflow_type
        self.correlation_id = correlation_id
        self.wait_for_completion = wait_for_completion

    def _record_id(self, context: Any) -> str:
        return self.job_batch(context, self.context)

    @task_errors
    def execute(self, context: Any) -> dict[str, Any]:
        hook = self.hook
        record_id = self._record_id(context)
        instance_id = self.adopt(
            context,
            record_id,
            hook.workflow_instance,
            unknown=WorkflowInstanceUnknownError,
            adoptable=lambda instance, same_run: not instance.finished_running or same_run,
            describe=lambda instance: instance.state,
        )
        if instance_id is None:
            found = hook.find_workflow_context(self.context, self.workflow_type)
            parameters = {k: str(v) for k, v in self.parameters.items() if v is not None and str(v) != ""}
            instance_id = hook.start_workflow(found, parameters, correlation_id=self.correlation_id)
            self.remember(context, record_id, instance_id, found.id)
            self.log.info("Started workflow %r (context %s): instance %s", found.name, found.id, instance_id)
        context["ti"].xcom_push(key="workflow_instance_id", value=instance_id)
        self.show_link(context, workflow_url(hook.settings.base_url, instance_id))
        if not self.wait_for_completion:
            self.forget(record_id)
            return {"instance_id": instance_id}
        if self.deferrable and not hook.workflow_instance(instance_id).finished_running:
            self.defer(
                trigger=PreservicaWorkflowTrigger(
                    preservica_conn_id=self.preservica_conn_id,
                    instance_id=instance_id,
                    poll_interval=self.poll_interval,
                    end_time=time.time() + self.timeout,
                ),
                method_name="execute_complete",
            )
        try:
            instance = hook.wait_for_workflow(instance_id, poll_interval=self.poll_interval, timeout=self.timeout)
        except PreservicaError as exc:
            raise AirflowException(str(exc)) from None
        return self._finish(record_id, instance)

    @task_errors
    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        event = self.resumed(context, event)
        instance = self.hook.workflow_instance(str(event["instance_id"]))
        return self._finish(self._record_id(context), instance)

    def _finish(self, record_id: str, instance: WorkflowInstance) -> dict[str, Any]:
        self.forget(record_id)
        result = {
            "instance_id": instance.id,
            "context_id": instance.context_id,
            "context_name": instance.context_name,
            "state": instance.state,
            "started": instance.started,
            "finished": instance.finished,
            "errors": instance.errors[:50],
        }
        if not instance.succeeded:
            raise AirflowFailException(
                f"Preservica workflow {instance.context_name!r} instance {instance.id} ended {instance.state}: "
                + ("; ".join(instance.errors[:5]) or "no error details returned")
            )
        self.log.info("Workflow %r instance %s: %s", instance.context_name, instance.id, instance.state)
        return result
