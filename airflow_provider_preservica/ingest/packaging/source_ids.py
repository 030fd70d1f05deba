"""SourceIDs: what an incremental OPEX ingest matches existing folders and assets on.

They must be stable: re-running the same batch must give the same SourceIDs so that assets already in
Preservica are recognised and skipped, never ingested twice. The default derives them from the
relative path; a callback can supply them from a catalogue instead.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Callable

#: ``source_id(relative_path, is_folder) -> SourceID``.
SourceIdFunc = Callable[[str, bool], str]

_SOURCE_ID_NAMESPACE = uuid.uuid5(
    uuid.NAMESPACE_URL, "https://github.com/preservica-airflow/airflow-provider-preservica/opex"
)


def uuid_source_ids(namespace: str) -> SourceIdFunc:
    """The default: a UUIDv5 of ``namespace`` + the NFC-normalised relative path.

    Deterministic (re-running a batch gives the same SourceIDs, so already-ingested assets can be
    skipped), fixed length, safe in searches, and different for two batches that share relative paths
    when their namespaces differ. The namespace defaults to the package name; pass a stable collection
    name when files of one collection arrive over several batches.
    """

    def source_id(path: str, is_folder: bool) -> str:
        key = f"{namespace}\x00{unicodedata.normalize('NFC', path)}"
        return str(uuid.uuid5(_SOURCE_ID_NAMESPACE, key))

    return source_id


def path_source_ids(prefix: str = "") -> SourceIdFunc:
    """Readable alternative: ``<prefix><relative path>`` (the top folder gets ``prefix`` without its ``/``)."""

    def source_id(path: str, is_folder: bool) -> str:
        return f"{prefix}{path}" if path else (prefix.rstrip("/") or ".")

    return source_id
