"""PreservicaWorkflowOperator on real Airflow (``dag.test()``) against the sandbox's Workflow API: a context
looked up by name, started with parameters, waited for in the worker and in the triggerer, its failure
reported with Preservica's errors, and a retry that takes over the instance instead of starting another."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from preservica_sandbox import SandboxServer

from tests.support.airflow_db import task_states


@pytest.fixture
def workflows(preservica_conn: SandboxServer) -> SandboxServer:
    preservica_conn.state.update_config({"ingest_seconds": 0.3})
    requests.delete(f"{preservica_conn.base_url}/_sandbox/ingest-faults", timeout=10).raise_for_status()
    return preservica_conn


def started(server: SandboxServer) -> int:
    return int(server.state.stats()["requests"].get("POST /sdb/rest/workflow/instances", 0))


@pytest.mark.parametrize("dag", ["workflow_polling_dag", "workflow_deferrable_dag"])
def test_a_workflow_is_started_by_name_and_waited_for(workflows: SandboxServer, run_dag: Any, dag: str) -> None:
    dag_run = run_dag("workflow_dags.py", dag, run_conf={"context": "download assets", "note": "from Airflow"})
    assert task_states(dag_run) == {"workflow[-1]": "success"}
    ti = dag_run.get_task_instance("workflow")
    result = ti.xcom_pull(task_ids="workflow")
    assert (result["context_name"], result["state"]) == ("Download Assets", "Completed")
    [job] = workflows.state.ingest.workflows()
    assert (
        str(job.workflow_id)
        == result["instance_id"]
        == str(ti.xcom_pull(task_ids="workflow", key="workflow_instance_id"))
    )
    assert job.parameters == {"note": "from Airflow"}
    link = ti.xcom_pull(task_ids="workflow", key="_link_PreservicaWorkflowLink")  # the task's button, deferred too
    assert link == f"{workflows.base_url}/sdb/rest/workflow/instances/{job.workflow_id}?includeErrors=true"
    assert started(workflows) == 1


@pytest.mark.parametrize("dag", ["workflow_polling_dag", "workflow_deferrable_dag"])
def test_a_failed_workflow_fails_the_task_with_its_errors(
    workflows: SandboxServer, run_dag: Any, dag: str, capfd: pytest.CaptureFixture[str]
) -> None:
    fault = {"outcome": "FAILED", "name": "Download Assets", "message": "Download target unreachable"}
    requests.post(f"{workflows.base_url}/_sandbox/ingest-faults", json=fault, timeout=10).raise_for_status()
    dag_run = run_dag("workflow_dags.py", dag, run_conf={"context": "Download Assets"})
    assert task_states(dag_run) == {"workflow[-1]": "failed"}
    out = capfd.readouterr()
    assert "ended Failed: " in out.out + out.err and "Download target unreachable" in out.out + out.err


def test_an_unknown_context_names_the_ones_there_are(workflows: SandboxServer, run_dag: Any, capfd) -> None:
    dag_run = run_dag("workflow_dags.py", "workflow_polling_dag", run_conf={"context": "Ingest OPEX"})
    assert task_states(dag_run) == {"workflow[-1]": "failed"}
    out = capfd.readouterr()
    assert "no workflow context named or numbered 'Ingest OPEX'" in out.out + out.err
    assert "'Ingest OPEX (Incremental)'" in out.out + out.err
    assert started(workflows) == 0


class FakeTaskInstance:
    dag_id, task_id, run_id, map_index, max_tries = "wf", "workflow", "manual__1", -1, 1

    def __init__(self) -> None:
        self.xcoms: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.xcoms[key] = value


def test_a_retry_takes_over_the_instance_the_first_try_started(workflows: SandboxServer) -> None:
    from airflow.exceptions import TaskDeferred

    from airflow_provider_preservica.operators.workflow import PreservicaWorkflowOperator

    context = {"ti": FakeTaskInstance()}
    common = {"task_id": "workflow", "context": "Ingest OPEX (Incremental)", "poll_interval": 0.05, "retries": 1}
    with pytest.raises(TaskDeferred):  # the first try starts the instance, defers, and its worker dies
        PreservicaWorkflowOperator(**common, deferrable=True).execute(context)
    first = context["ti"].xcoms["workflow_instance_id"]
    with pytest.raises(Exception, match=f"instance {first} ended"):  # the retry waits for that same instance
        PreservicaWorkflowOperator(**common, deferrable=False).execute(context)
    assert started(workflows) == 1
