"""Export a Preservica folder (a collection) to a zip, verify every fixity in it, and unpack it.

Which folder: the run's ``collection_ref`` parameter, else the Variable ``preservica_export_collection``.
Where: the Variable ``preservica_export_dir`` (default ``/tmp/preservica-exports``); each run writes
``<dir>/<ds>/collection-<ref>.zip`` and unpacks it next to it, in ``<dir>/<ds>/collection-<ref>/``.

    airflow variables set preservica_export_collection <folder ref>
    airflow variables set preservica_export_dir /data/exports
    airflow dags test preservica_export_collection                       # or, for another folder:
    airflow dags test preservica_export_collection -c '{"collection_ref": "<folder ref>"}'

The export waits in the triggerer (deferrable), resumes a dropped download with HTTP Range requests,
and deletes an archive that fails verification (zip CRCs and every fixity its OPEX sidecars declare).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, Variable, task

from airflow_provider_preservica.compat import AirflowFailException
from airflow_provider_preservica.operators import PreservicaExportOperator

with DAG(
    "preservica_export_collection",
    description="Export a Preservica folder, verify it, unpack it",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["preservica", "example", "export"],
    params={"collection_ref": Param("", type="string", description="folder reference; empty = the Variable")},
) as dag:

    @task(multiple_outputs=True)
    def plan(ds: str | None = None, params: dict | None = None) -> dict[str, str]:
        ref = (params or {}).get("collection_ref") or Variable.get("preservica_export_collection", default="")
        if not ref:
            raise AirflowFailException(
                'no folder to export: pass -c \'{"collection_ref": "<ref>"}\' or set the Variable '
                "preservica_export_collection"
            )
        folder = Path(Variable.get("preservica_export_dir", default="/tmp/preservica-exports")).expanduser() / str(ds)
        folder.mkdir(parents=True, exist_ok=True)
        return {"ref": ref, "zip": str(folder / f"collection-{ref}.zip"), "unpacked": str(folder / f"collection-{ref}")}

    paths = plan()
    export = PreservicaExportOperator(
        task_id="export",
        entity_ref=paths["ref"],
        entity_type="SO",
        destination=paths["zip"],
        unzip_to=paths["unpacked"],
        verify=True,
        deferrable=True,
        poll_interval=2,
        min_free_bytes=256 * 1024 * 1024,
        retries=2,
    )

    @task
    def summary(result: dict[str, Any]) -> str:
        line = (
            f"Exported {result['path']}: {result['bytes']:,} bytes, {result['files']} files, "
            f"{result['bitstreams_checked']} checked against their ingest fixity, "
            f"{result['fixities_checked']} fixities checked in all, sha256 {result['sha256']}; "
            f"unpacked to {result['unzipped_to']}"
        )
        print(line)
        return line

    summary(export.output)
