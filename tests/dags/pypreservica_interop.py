"""Test DAG: existing pyPreservica code in tasks, with its token taken from the hook's shared cache."""

from __future__ import annotations

import json
import os
import urllib.request

import pendulum
from airflow.sdk import dag, task

from airflow_provider_preservica.hooks.preservica import PreservicaHook

MAPS_FOLDER = "a0000000-0000-4000-8000-000000000001"


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def preservica_pypreservica_interop():
    @task
    def folder_title(index: int) -> str:
        from pyPreservica import EntityAPI

        entity = PreservicaHook().get_pypreservica_client(EntityAPI)
        return entity.folder(MAPS_FOLDER).title

    @task
    def count_open_assets() -> int:
        from pyPreservica import ContentAPI

        content = PreservicaHook().get_pypreservica_client(ContentAPI)
        return content.search_index_filter_hits("%", {"xip.security_descriptor": "open", "xip.document_type": "IO"})

    @task
    def revoke_every_token() -> None:
        request = urllib.request.Request(
            f"{os.environ['PRESERVICA_SANDBOX_URL']}/_sandbox/faults",
            data=json.dumps({"kind": "revoke_token", "user": "archivist"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=10).read()

    @task
    def children_after_revocation() -> int:
        from pyPreservica import EntityAPI

        entity = PreservicaHook().get_pypreservica_client(EntityAPI)
        return len(list(entity.descendants(MAPS_FOLDER)))

    revoke = revoke_every_token()
    [folder_title.expand(index=[0, 1, 2]), count_open_assets()] >> revoke >> children_after_revocation()


pypreservica_interop_dag = preservica_pypreservica_interop()
