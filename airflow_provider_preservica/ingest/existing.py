"""Skip assets whose SourceID is already in Preservica, before anything is packaged or uploaded."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from airflow_provider_preservica.client.entities import EntityService
from airflow_provider_preservica.packaging.source import Prune, SourceEntry, SourceTree

SOURCE_ID_IDENTIFIER = "SourceID"


def existing_source_ids(
    entities: EntityService, source_ids: Iterable[str], identifier_type: str = SOURCE_ID_IDENTIFIER
) -> dict[str, str]:
    """``{source_id: entity ref}`` for every SourceID that an asset in Preservica already carries."""
    found: dict[str, str] = {}
    for source_id in source_ids:
        matches = [e for e in entities.find_by_identifier(identifier_type, source_id) if e.entity_type == "IO"]
        if matches:
            found[source_id] = matches[0].ref
    return found


class WithoutFiles:
    """A source tree minus some files; folders left without any file disappear too."""

    def __init__(self, tree: SourceTree, skipped: Iterable[str]) -> None:
        self.tree = tree
        self.skipped = frozenset(skipped)

    @property
    def name(self) -> str:
        return self.tree.name

    def scan(self, prune: Prune | None = None) -> Iterator[SourceEntry]:
        entries = [e for e in self.tree.scan(prune) if e.path not in self.skipped]
        kept_files = [e.path for e in entries if e.kind != "dir"]
        keep_dirs = {""}
        for path in kept_files:
            parts = path.split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                keep_dirs.add("/".join(parts[:depth]))
        for entry in entries:
            if entry.kind != "dir" or entry.path in keep_dirs:
                yield entry

    def open(self, path: str) -> BinaryIO:
        return self.tree.open(path)

    def check_readable(self, path: str) -> str | None:
        return self.tree.check_readable(path)

    def local_path(self, path: str) -> Path | None:
        return self.tree.local_path(path)
