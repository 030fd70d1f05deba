"""The hook's workflow calls against the sandbox's Workflow API: contexts looked up as people name them."""

from __future__ import annotations

import pytest
from preservica_sandbox import SandboxServer

from airflow_provider_preservica.client.workflows import WorkflowContextNotFoundError, wait_for_workflow
from airflow_provider_preservica.hooks.preservica import PreservicaHook


def test_contexts_by_type_and_a_workflow_started_by_name(preservica_conn: SandboxServer) -> None:
    preservica_conn.state.update_config({"ingest_seconds": 0.3})
    hook = PreservicaHook()
    assert {c.name for c in hook.workflow_contexts("Ingest")} == {"Basic Ingest", "Ingest OPEX (Incremental)"}
    instance_id = hook.start_workflow("migrate formats", {"format": "fmt/353"})
    [job] = preservica_conn.state.ingest.workflows()
    assert (str(job.workflow_id), job.context.name, job.parameters) == (
        instance_id,
        "Migrate Formats",
        {"format": "fmt/353"},
    )
    done = wait_for_workflow(hook.get_conn(), instance_id, poll_interval=0.05, timeout=30)
    assert (done.state, done.context_name, done.errors) == ("Completed", "Migrate Formats", [])
    assert hook.workflow_instance(instance_id).finished is not None


def test_an_unknown_context_lists_the_known_ones_and_starts_nothing(preservica_conn: SandboxServer) -> None:
    with pytest.raises(WorkflowContextNotFoundError) as raised:
        PreservicaHook().start_workflow("OPEX incremental", workflow_type="Ingest")
    assert str(raised.value).endswith("the contexts are: 'Basic Ingest', 'Ingest OPEX (Incremental)'")
    assert "of type Ingest" in str(raised.value)
    assert preservica_conn.state.ingest.workflows() == []
