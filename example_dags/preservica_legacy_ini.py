"""A DAG that still reads a legacy ``config.ini``: the stepping stone from scripts to Connections.

Preservica scripts often keep their credentials in Preservica's sample ``config.ini`` (or pyPreservica's
``credentials.properties``). ``PreservicaHook`` reads such a file when the Connection it is asked for does
not exist: from ``ini_path=...``, or from the ``PRESERVICA_INI`` environment variable of the worker (that
one also serves the operators, which take no ini_path). The token is still cached in the Variable
``preservica_access_token__preservica_legacy`` and shared by every task.

    airflow variables set preservica_ini_path /opt/scripts/config.ini
    airflow dags test preservica_legacy_ini

Once it works, import the file as a Connection and drop the fallback (the DAG keeps working unchanged,
because the Connection now exists and wins over the file):

    airflow-preservica import-ini /opt/scripts/config.ini --conn-id preservica_legacy
    # for another system:  airflow-preservica import-ini config.ini --conn-id preservica_prod
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Variable, task

from airflow_provider_preservica.hooks import PreservicaHook

CONN_ID = "preservica_legacy"  # does not exist yet: the hook falls back to the ini file

with DAG(
    "preservica_legacy_ini",
    description="Read a legacy config.ini through PreservicaHook's fallback",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["preservica", "example", "migration"],
) as dag:

    @task
    def top_level_folders() -> list[str]:
        hook = PreservicaHook(CONN_ID, ini_path=Variable.get("preservica_ini_path", default=None))
        client = hook.get_conn()
        titles = [entity.title for entity in hook.entities.children(None)]
        print(
            f"Preservica {client.server_version()} at {hook.settings.base_url} ({hook.settings.source}): "
            f"{len(titles)} top-level folders: {', '.join(titles[:10])}"
        )
        return titles

    top_level_folders()
