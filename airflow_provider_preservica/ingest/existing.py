"""Which files of a delivery Preservica already holds: lookups for staging, and a source tree without them."""

from __future__ import annotations

from collections.abc import Iterable

from airflow_provider_preservica.client.entities import EntityService
from airflow_provider_preservica.ingest.identity import find_present
from airflow_provider_preservica.ingest.packaging.source import SourceTree, SubsetTree
from airflow_provider_preservica.ingest.staging import ExistingLookup, FileRecord, Holdings

SOURCE_ID_IDENTIFIER = "SourceID"


def existing_source_ids(
    entities: EntityService, source_ids: Iterable[str], identifier_type: str = SOURCE_ID_IDENTIFIER
) -> dict[str, str]:
    """``{source_id: entity ref}`` for every SourceID that an asset *anywhere* in Preservica carries.

    One request per SourceID, repository-wide and blind to content: never a reason to skip a file (another
    delivery may carry the same SourceID with other content). :func:`held_below` is the skip rule.
    """
    found: dict[str, str] = {}
    for source_id in source_ids:
        matches = [e for e in entities.find_by_identifier(identifier_type, source_id) if e.entity_type == "IO"]
        if matches:
            found[source_id] = matches[0].ref
    return found


def held_below(entities: EntityService, parent_ref: str | None, *, read_lagging: bool = False) -> ExistingLookup:
    """The lookup for ``staging.stage_delivery(existing=...)``: the ingest operator's rule for a skip.

    A staged file is held when an asset *below* ``parent_ref`` carries its SourceID with the same fixity; the
    same SourceID there with other content is a conflict; elsewhere in the repository it means nothing. One
    search per 100 files (``ingest.identity``). ``parent_ref`` None (the target folder does not exist yet):
    nothing is held. ``read_lagging``: after an ingest, read what the search index does not show yet.
    """

    def lookup(records: list[FileRecord]) -> Holdings:
        if parent_ref is None or not records:
            return Holdings()
        algorithms = {record.fixity_type for record in records}
        if len(algorithms) != 1:
            raise ValueError(f"staged files must share one fixity algorithm, not {sorted(algorithms)}")
        files = {record.source_id: record.path for record in records}
        checksums = {record.path: record.fixity_value for record in records}
        presence = find_present(
            entities,
            parent_ref,
            files,
            lambda paths: {path: checksums[path] for path in paths},
            algorithms.pop(),
            read_lagging=read_lagging,
        )
        conflicts = {
            c.source_id: f"SourceID held by asset {c.ref} below the target, {c.reason}" for c in presence.conflicts
        }
        return Holdings(present=presence.present, conflicts=conflicts)

    return lookup


class WithoutFiles(SubsetTree):
    """A source tree minus some files; folders left without any file disappear too."""

    def __init__(self, tree: SourceTree, skipped: Iterable[str]) -> None:
        left_out = frozenset(skipped)
        super().__init__(tree, lambda path: path not in left_out)
