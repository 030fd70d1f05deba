"""One DAG per operator (and the sensor), each task with ``retries=3``: what a refused login costs.

``retry_delay`` is zero so that ``dag.test()`` runs any retry at once instead of waiting for it.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_provider_preservica.operators.export import PreservicaExportOperator
from airflow_provider_preservica.operators.ingest import PreservicaIngestOperator
from airflow_provider_preservica.operators.metadata import PreservicaMetadataOperator
from airflow_provider_preservica.operators.search import PreservicaSearchOperator
from airflow_provider_preservica.sensors.progress import PreservicaProgressSensor

PARAMS = {"dir": "/tmp/rejected-login", "ref": "a0000000-0000-4000-8000-000000000001", "token": "none"}
RETRIES = {"retries": 3, "retry_delay": timedelta(0)}

TASKS = {
    "search": lambda: PreservicaSearchOperator(task_id="task", output_path="{{ params.dir }}/report.csv", **RETRIES),
    "ingest": lambda: PreservicaIngestOperator(
        task_id="task",
        source="{{ params.dir }}/batch",
        parent_ref="{{ params.ref }}",
        poll_interval=0.2,
        deferrable=False,
        **RETRIES,
    ),
    "export": lambda: PreservicaExportOperator(
        task_id="task",
        entity_ref="{{ params.ref }}",
        destination="{{ params.dir }}/export.zip",
        min_free_bytes=0,
        poll_interval=0.2,
        deferrable=False,
        **RETRIES,
    ),
    # Logs in fine, defers, and the trigger's login is the one refused (the test changes the password).
    "export_deferred": lambda: PreservicaExportOperator(
        task_id="task",
        entity_ref="{{ params.ref }}",
        destination="{{ params.dir }}/export.zip",
        min_free_bytes=0,
        poll_interval=0.2,
        deferrable=True,
        **RETRIES,
    ),
    "metadata": lambda: PreservicaMetadataOperator(
        task_id="task", source="{{ params.dir }}/corrections.csv", deferrable=False, **RETRIES
    ),
    # Changes a security tag, defers for that background work; the trigger's login is refused.
    "metadata_deferred": lambda: PreservicaMetadataOperator(
        task_id="task", source="{{ params.dir }}/tags.csv", poll_interval=0.2, deferrable=True, **RETRIES
    ),
    "sensor": lambda: PreservicaProgressSensor(
        task_id="task", progress_token="{{ params.token }}", poke_interval=0.2, timeout=60, **RETRIES
    ),
}

for _name, _make in TASKS.items():
    with DAG(
        f"preservica_rejected_login_{_name}",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        params=PARAMS,
    ) as _dag:
        _make()
    globals()[f"{_name}_dag"] = _dag
