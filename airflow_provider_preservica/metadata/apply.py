"""Run a sheet (or one entity's wanted state) against the account a hook connects to.

What ``PreservicaHook.update_metadata`` and ``update_entity`` do: the hook's methods are thin wrappers that
import this module when called, so that the dependency points down (this feature uses the hook's calls; the
hook imports no runner at import time).
"""

from __future__ import annotations

import os
from typing import Any

from airflow_provider_preservica.exceptions import PreservicaError
from airflow_provider_preservica.metadata.model import RowOutcome
from airflow_provider_preservica.metadata.runner import DEFAULT_WORKERS, MetadataCalls, MetadataRun, MetadataUpdater
from airflow_provider_preservica.metadata.sheet import (
    DEFAULT_MAX_FRAGMENT_BYTES,
    Sheet,
    SheetStream,
    sheet_from_records,
    stream_sheet,
)

SheetInput = str | os.PathLike[str] | Sheet | SheetStream | list[dict[str, Any]]


def update_metadata(
    preservica: MetadataCalls,
    sheet: SheetInput,
    *,
    dry_run: bool = False,
    allow_partial: bool = False,
    max_workers: int = DEFAULT_WORKERS,
    wait: bool = True,
    poll_interval: float = 2.0,
    timeout: float = 3600.0,
    metadata_root: str | os.PathLike[str] | None = None,
    max_fragment_bytes: int = DEFAULT_MAX_FRAGMENT_BYTES,
) -> MetadataRun:
    """Bring many entities to the state ``sheet`` describes (see ``PreservicaHook.update_metadata``)."""
    limits: dict[str, Any] = {"metadata_root": metadata_root, "max_fragment_bytes": max_fragment_bytes}
    parsed: Sheet | SheetStream
    if isinstance(sheet, list):
        parsed = sheet_from_records(sheet, **limits)
    elif isinstance(sheet, (Sheet, SheetStream)):
        parsed = sheet
    else:
        parsed = stream_sheet(os.fspath(sheet), **limits)  # read as it runs: flat memory for any length
    updater = MetadataUpdater(preservica, max_workers=max_workers)
    return updater.run(
        parsed,
        dry_run=dry_run,
        allow_partial=allow_partial,
        wait=wait,
        poll_interval=poll_interval,
        timeout=timeout,
    )


def update_entity(preservica: MetadataCalls, entity: str, *, dry_run: bool = False, **wanted: Any) -> RowOutcome:
    """One entity to a wanted state (see ``PreservicaHook.update_entity``); a failure raises ``PreservicaError``."""
    record = {"reference": entity or None, **wanted}
    run = update_metadata(preservica, [record], dry_run=dry_run, allow_partial=True)
    outcome = run.outcomes[0]
    if outcome.outcome.failed:
        raise PreservicaError(f"{outcome.locator}: {outcome.outcome.value}: {outcome.message}")
    return outcome
