"""Catalogue corrections: a spreadsheet of fixes applied to the folder the nightly ingest filled.

The nightly ingest (``preservica_nightly_ingest``) files each year's deliveries in one folder, found by its
identifier ``pipeline`` = ``nightly-ingest-<year>``. Its assets are titled with their file names and carry
a ``SourceID`` identifier (derived from the delivery day and the file's path, so the same on every system),
listed per file in the ingest report (``ingest-<day>.csv``, column ``source_id``). A cataloguer writes the
corrections as a CSV that names each asset by that identifier, not by a reference nobody knows in advance:

    identifier_type,identifier_value,title,description,identifier:catalogue,security_tag,metadata
    SourceID,b6a626f4-...,"Minutes of the parish council, 3 March 1921",Fair copy.,PC/1/1921/3,open,"<oai_dc:dc ..."
    SourceID,1d24e2d8-...,Letter to the mayor concerning the bridge,,PC/2/14,,

An empty cell leaves that property as it is; ``metadata`` is a descriptive metadata fragment (here Dublin
Core, ``<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/"
xmlns:dc="http://purl.org/dc/elements/1.1/">``) that replaces the asset's fragment of that schema. Every
column is described in ``airflow_provider_preservica.metadata.sheet``.

Configure with an Airflow Variable (or edit the default), or per run with the ``sheet`` parameter:

    preservica_corrections_sheet   /data/corrections/corrections.csv   the sheet (a local path or s3://...,
                                                                       gs://...); the reports go next to it

Steps:

1. ``find_assets``: the folder of the run's year (or of the ``year`` parameter), found by identifier, and
   every folder and asset in it; each row of the sheet must name one of them. A row naming anything
   outside that folder, or nothing at all, fails the run here, before the dry run.
2. ``dry_run`` (``PreservicaMetadataOperator(dry_run=True)``): reads every row's entity and reports what
   would change, writing nothing: ``corrections.dry-run.csv`` next to the sheet, and a summary in the log.
   Any bad row (unknown identifier, two rows for one asset, malformed XML, unknown tag) fails it here.
3. ``apply_requested``: stops the run after the dry run when it was started with ``{"apply": false}``, so
   the dry-run report can be reviewed first.
4. ``apply``: writes only what differs (``corrections.report.csv``); security tag changes and moves are
   waited for in the triggerer.
5. ``summary``: the dry run's and the apply's counts, one line each.

Safe to re-run: a sheet already applied changes nothing, and every row is reported ``unchanged``. Try it:
``airflow dags test preservica_metadata_corrections``, or a dry run only:
``airflow dags test preservica_metadata_corrections -c '{"apply": false}'``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, Variable, task

from airflow_provider_preservica.compat import AirflowFailException
from airflow_provider_preservica.exceptions import PreservicaError
from airflow_provider_preservica.hooks import Entity, EntityService, PreservicaHook
from airflow_provider_preservica.metadata import RowChange, read_sheet
from airflow_provider_preservica.operators import PreservicaMetadataOperator

CONN_ID = "preservica_default"
SHOWN_ROWS = 20
OUTCOMES = ("changed", "would_change", "unchanged", "pending", "not_applied", "not_found")
OUTCOMES += ("ambiguous_identifier", "invalid", "rejected")


def sheet_path(params: dict | None) -> str:
    return (params or {}).get("sheet") or Variable.get(
        "preservica_corrections_sheet", default="/tmp/preservica-corrections/corrections.csv"
    )


def everything_below(entities: EntityService, folder_ref: str) -> dict[str, tuple[Entity, str]]:
    """Every folder and asset below ``folder_ref``: ref -> (entity, path of titles below the folder)."""
    found: dict[str, tuple[Entity, str]] = {}
    todo = [(folder_ref, "")]
    while todo:
        ref, path = todo.pop()
        for child in entities.children(ref):
            found[child.ref] = (child, f"{path}{child.title}")
            if child.entity_type == "SO":
                todo.append((child.ref, f"{path}{child.title}/"))
    return found


def counts(result: dict[str, Any]) -> str:
    shown = [f"{result[key]} {key.replace('_', ' ')}" for key in OUTCOMES if result.get(key)]
    return f"{result['rows']} rows: {', '.join(shown) or 'nothing to report'}"


with DAG(
    "preservica_metadata_corrections",
    description="A corrections sheet (titles, identifiers, Dublin Core, tags) for the nightly ingest's folder",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["preservica", "example", "metadata"],
    params={
        "sheet": Param("", type="string", description="the corrections sheet; empty = the Variable"),
        "year": Param("", type="string", description="year of the nightly ingest folder; empty = the run's"),
        "apply": Param(True, type="boolean", description="false: stop after the dry run"),
    },
) as dag:

    @task(multiple_outputs=True)
    def find_assets(ds: str | None = None, params: dict | None = None) -> dict[str, Any]:
        """The nightly ingest's folder and what is in it; every row of the sheet must name one of those."""
        source = sheet_path(params)
        year = (params or {}).get("year") or str(ds)[:4]
        entities = PreservicaHook(CONN_ID).entities
        folders = [
            e for e in entities.find_by_identifier("pipeline", f"nightly-ingest-{year}") if e.entity_type == "SO"
        ]
        if len(folders) != 1:
            raise AirflowFailException(
                f"{len(folders)} folders carry identifier pipeline=nightly-ingest-{year} (expected one); "
                "run preservica_nightly_ingest for that year first, or pass another year"
            )
        folder = folders[0]
        inside = everything_below(entities, folder.ref)
        assets = sum(1 for entity, _ in inside.values() if entity.entity_type == "IO")
        print(f"Folder {folder.title!r} ({folder.ref}): {assets} assets in {len(inside) - assets} folders")
        try:
            sheet = read_sheet(source)
        except PreservicaError as exc:
            raise AirflowFailException(str(exc)) from None

        def locate(change: RowChange) -> tuple[RowChange, str | None, str]:
            if change.ref:
                return change, change.ref if change.ref in inside else None, "not in the folder"
            assert change.lookup is not None
            matches = [e.ref for e in entities.find_by_identifier(*change.lookup)]
            found = [ref for ref in matches if ref in inside]
            if found:
                return change, found[0], ""
            if matches:
                return change, None, f"only entities outside the folder have it ({', '.join(matches[:3])})"
            return change, None, "no entity has this identifier"

        with ThreadPoolExecutor(8, thread_name_prefix="find-assets") as pool:
            located = list(pool.map(locate, sheet.changes))
        outside = [f"row {c.row} ({c.locator}): {why}" for c, ref, why in located if ref is None]
        if outside:
            raise AirflowFailException(
                f"{len(outside)} rows of {source} name nothing in {folder.title!r} ({folder.ref}): "
                + "; ".join(outside[:SHOWN_ROWS])
            )
        for change, ref, _ in located[:SHOWN_ROWS]:
            entity, path = inside[str(ref)]
            print(f"  row {change.row}: {change.locator} -> {entity.entity_type} {path} ({ref})")
        if len(located) > SHOWN_ROWS:
            print(f"  ... and {len(located) - SHOWN_ROWS} more rows")
        if sheet.problems:  # the dry run reports them, each with its reason
            print(f"{len(sheet.problems)} rows of the sheet are not valid; the dry run will say why")
        return {"sheet": source, "folder": folder.ref, "assets": assets, "rows": sheet.rows}

    found = find_assets()
    dry_run = PreservicaMetadataOperator(
        task_id="dry_run",
        source=found["sheet"],
        dry_run=True,
        retries=2,
        preservica_conn_id=CONN_ID,
    )

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def apply_requested(dry: dict[str, Any], params: dict | None = None) -> bool:
        """The run's ``apply`` parameter (default true); false leaves the dry-run report to review."""
        print(f"Dry run: {counts(dry)}; report {dry['report']}")
        return bool((params or {}).get("apply", True))

    apply = PreservicaMetadataOperator(
        task_id="apply",
        source=found["sheet"],
        deferrable=True,
        poll_interval=2,
        retries=2,
        preservica_conn_id=CONN_ID,
    )

    @task(trigger_rule="none_failed")
    def summary(ti: Any = None) -> dict[str, Any]:
        """Both results, one line each (the apply's is missing when the run stopped after the dry run)."""
        dry = ti.xcom_pull(task_ids="dry_run")
        applied = ti.xcom_pull(task_ids="apply")
        print(f"Corrections dry run: {counts(dry)}; report {dry['report']}")
        if applied:
            print(f"Corrections applied: {counts(applied)}; report {applied['report']}")
        else:
            print("Corrections not applied: the run was started with apply=false")
        return {"dry_run": dry, "applied": applied}

    apply_requested(dry_run.output) >> apply >> summary()
